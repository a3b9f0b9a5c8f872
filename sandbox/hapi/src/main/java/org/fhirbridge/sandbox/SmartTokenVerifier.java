package org.fhirbridge.sandbox;

import java.net.MalformedURLException;
import java.net.URI;
import java.text.ParseException;
import java.util.List;
import java.util.Set;

import ca.uhn.fhir.rest.server.exceptions.AuthenticationException;
import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.proc.BadJOSEException;
import com.nimbusds.jose.proc.DefaultJOSEObjectTypeVerifier;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;

/**
 * Checks a bearer token: a JWT signed by a key of the authorization server's JWKS (fetched on
 * first use, cached, fetched again when a token names a key id it does not know), issued by the
 * configured issuer, not expired and already valid ({@code exp} required, {@code nbf} honoured).
 */
public final class SmartTokenVerifier {

    /** Clock difference tolerated between the authorization server and this one. */
    static final int CLOCK_SKEW_SECONDS = 5;

    private static final Set<JWSAlgorithm> ALGORITHMS = Set.of(
            JWSAlgorithm.RS256, JWSAlgorithm.RS384, JWSAlgorithm.RS512,
            JWSAlgorithm.PS256, JWSAlgorithm.PS384, JWSAlgorithm.PS512,
            JWSAlgorithm.ES256, JWSAlgorithm.ES384, JWSAlgorithm.ES512);

    private final DefaultJWTProcessor<SecurityContext> processor = new DefaultJWTProcessor<>();

    public SmartTokenVerifier(SmartSettings settings) {
        JWKSource<SecurityContext> keys;
        try {
            keys = JWKSourceBuilder.<SecurityContext>create(URI.create(settings.jwksUrl()).toURL())
                    .retrying(true)
                    .rateLimited(false)
                    .build();
        } catch (MalformedURLException e) {
            throw new IllegalArgumentException("--smart-jwks-url is not a URL: " + settings.jwksUrl());
        }
        processor.setJWSKeySelector(new JWSVerificationKeySelector<>(ALGORITHMS, keys));
        // access tokens are typed JWT (Keycloak) or at+jwt (RFC 9068), or not typed
        processor.setJWSTypeVerifier(
                new DefaultJOSEObjectTypeVerifier<>(JOSEObjectType.JWT, new JOSEObjectType("at+jwt"), null));
        DefaultJWTClaimsVerifier<SecurityContext> claims = new DefaultJWTClaimsVerifier<>(
                new JWTClaimsSet.Builder().issuer(settings.issuer()).build(), Set.of("exp"));
        claims.setMaxClockSkew(CLOCK_SKEW_SECONDS);
        processor.setJWTClaimsSetVerifier(claims);
    }

    /** The scopes of a valid token; 401 with {@code WWW-Authenticate: Bearer} otherwise. */
    public SmartScopes verify(String authorization) {
        if (authorization == null || authorization.isBlank()) {
            throw unauthorized("an access token is required (Authorization: Bearer ...)", null);
        }
        if (!authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
            throw unauthorized("the Authorization header must carry a Bearer token", "invalid_request");
        }
        String token = authorization.substring(7).trim();
        JWTClaimsSet claims;
        try {
            claims = processor.process(token, null);
        } catch (ParseException e) {
            throw unauthorized("the access token is not a JWT", "invalid_token");
        } catch (BadJOSEException | JOSEException e) {
            throw unauthorized("the access token was refused: " + e.getMessage(), "invalid_token");
        }
        return SmartScopes.parse(scopeClaim(claims));
    }

    private static String scopeClaim(JWTClaimsSet claims) {
        Object scope = claims.getClaim("scope");
        if (scope instanceof String text) {
            return text;
        }
        Object scp = claims.getClaim("scp");
        if (scp instanceof List<?> list) {
            return String.join(" ", list.stream().map(String::valueOf).toList());
        }
        return scp instanceof String text ? text : "";
    }

    private static AuthenticationException unauthorized(String message, String error) {
        AuthenticationException exception = new AuthenticationException(message);
        exception.setErrorMessageTrusted(true);
        String challenge = "Bearer realm=\"fhir-bridge sandbox\"";
        if (error != null) {
            challenge += ", error=\"" + error + "\"";
        }
        exception.addResponseHeader("WWW-Authenticate", challenge);
        return exception;
    }
}
