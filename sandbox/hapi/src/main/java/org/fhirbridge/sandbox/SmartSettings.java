package org.fhirbridge.sandbox;

import java.net.URI;

/**
 * Where the authorization server is, when the sandbox is a SMART resource server: tokens must be
 * issued by {@code issuer}, signed by a key of {@code jwksUrl}; clients get them at {@code tokenUrl}.
 */
public record SmartSettings(String issuer, String jwksUrl, String tokenUrl) {

    public SmartSettings {
        requireUrl("--smart-issuer", issuer);
        requireUrl("--smart-jwks-url", jwksUrl);
        requireUrl("--smart-token-url", tokenUrl);
    }

    /** The settings from the three options; null when none is given (SMART off). */
    public static SmartSettings fromOptions(String issuer, String jwksUrl, String tokenUrl) {
        if (isBlank(issuer) && isBlank(jwksUrl) && isBlank(tokenUrl)) {
            return null;
        }
        return new SmartSettings(issuer, jwksUrl, tokenUrl);
    }

    private static void requireUrl(String option, String value) {
        if (isBlank(value)) {
            throw new IllegalArgumentException(
                    option + " is missing: SMART needs --smart-issuer, --smart-jwks-url and --smart-token-url");
        }
        URI uri;
        try {
            uri = URI.create(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(option + " is not a URL: " + value);
        }
        if (!"http".equals(uri.getScheme()) && !"https".equals(uri.getScheme())) {
            throw new IllegalArgumentException(option + " must be an http or https URL: " + value);
        }
    }

    private static boolean isBlank(String value) {
        return value == null || value.isBlank();
    }
}
