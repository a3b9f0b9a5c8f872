package org.fhirbridge.sandbox;

import ca.uhn.fhir.rest.server.RestfulServer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The profile and the SMART setting the sandbox runs with (from {@code --profile} and the {@code
 * --smart-*} options), the interceptors that enforce them, and the SMART discovery document.
 */
@Configuration
public class SandboxOptions {

    private static final Logger LOG = LoggerFactory.getLogger(SandboxOptions.class);

    /** What one server enforces. {@code smart} is null when SMART is off. */
    public record Guards(SandboxProfile profile, SmartSettings smart) {

        /** Registers the interceptors on the server (SMART first, then the profile's rules). */
        public void register(RestfulServer server) {
            if (smart != null) {
                server.registerInterceptor(new SmartAuthInterceptor(new SmartTokenVerifier(smart)));
                LOG.info("SMART authorization is ON (issuer {}, keys {}, token endpoint {})",
                        smart.issuer(), smart.jwksUrl(), smart.tokenUrl());
            } else {
                LOG.info("SMART authorization is OFF");
            }
            if (!profile.isOpen()) {
                server.registerInterceptor(new ProfileInterceptor(new ProfileRules(profile)));
            }
            server.registerInterceptor(new ProfileCapabilities(profile, smart));
            LOG.info("Profile: {}", profile.name());
        }
    }

    @Bean
    public Guards sandboxGuards(
            @Value("${" + SandboxServer.PROFILE_PROPERTY + ":open}") String profile,
            @Value("${" + SandboxServer.SMART_ISSUER_PROPERTY + ":}") String issuer,
            @Value("${" + SandboxServer.SMART_JWKS_PROPERTY + ":}") String jwksUrl,
            @Value("${" + SandboxServer.SMART_TOKEN_PROPERTY + ":}") String tokenUrl) {
        return new Guards(SandboxProfile.named(profile), SmartSettings.fromOptions(issuer, jwksUrl, tokenUrl));
    }

    @Bean
    public ServletRegistrationBean<SmartConfigurationServlet> smartConfiguration(Guards guards) {
        ServletRegistrationBean<SmartConfigurationServlet> registration =
                new ServletRegistrationBean<>(new SmartConfigurationServlet(guards.smart()), SmartConfigurationServlet.PATH);
        registration.setName("smart-configuration");
        return registration;
    }
}
