package org.fhirbridge.sandbox;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.autoconfigure.context.PropertyPlaceholderAutoConfiguration;
import org.springframework.boot.autoconfigure.web.embedded.EmbeddedWebServerFactoryCustomizerAutoConfiguration;
import org.springframework.boot.autoconfigure.web.servlet.ServletWebServerFactoryAutoConfiguration;
import org.springframework.context.annotation.Import;

/**
 * Entry point of the fhir-bridge FHIR sandbox: a HAPI FHIR JPA server (R4) on an embedded H2
 * database, served by an embedded Tomcat at {@code http://127.0.0.1:PORT/fhir}.
 *
 * <p>Options (all optional):
 *
 * <ul>
 *   <li>{@code --port=N} (default 8080, or env {@code HAPI_PORT})
 *   <li>{@code --data-dir=PATH} where the H2 database files live (default {@code ./hapi-data},
 *       or env {@code HAPI_DATA_DIR}); delete the directory to start from an empty server
 *   <li>{@code --validate} validate every request body against base FHIR R4 and refuse it on
 *       any ERROR (or env {@code HAPI_VALIDATE=true}, or system property {@code
 *       fhirbridge.validate=true})
 *   <li>{@code --ig=us-core-7|us-core-6.1} with {@code --validate}: validate against that US Core
 *       package (shipped in the jar) as a hospital does, by resource type (see {@link
 *       ByTypeValidator}); unresolvable terminology gives warnings, not errors
 *   <li>{@code --profile=open|epic-like|oracle-like} what the server refuses, as an EHR of that
 *       kind does (default {@code open}: nothing; see {@link SandboxProfile})
 *   <li>{@code --smart-issuer=URL --smart-jwks-url=URL --smart-token-url=URL} (all three, or
 *       none) make it a SMART resource server: every request but {@code /metadata} and {@code
 *       /.well-known/smart-configuration} needs a bearer token from that authorization server
 * </ul>
 *
 * <p>A bad option value prints one line on stderr and exits with code 2.
 *
 * <p>Any other {@code --key=value} argument is handed to Spring Boot unchanged.
 *
 * <p>Only the few Spring Boot auto-configurations needed for an embedded Tomcat are imported, so
 * that start-up does not pay for anything the sandbox does not use.
 */
@SpringBootConfiguration
@ImportAutoConfiguration({
    PropertyPlaceholderAutoConfiguration.class,
    ServletWebServerFactoryAutoConfiguration.class,
    EmbeddedWebServerFactoryCustomizerAutoConfiguration.class
})
@Import({SandboxJpaConfig.class, SandboxRestConfig.class, SandboxOptions.class})
public class SandboxServer {

    /** Spring property that switches request validation on. */
    public static final String VALIDATE_PROPERTY = "fhirbridge.validate";

    /** Spring property naming the implementation guide validation loads ({@link ImplementationGuide}). */
    public static final String IG_PROPERTY = "fhirbridge.ig";

    /** Spring property naming the directory that holds the H2 database. */
    public static final String DATA_DIR_PROPERTY = "fhirbridge.data-dir";

    /** Spring property naming the profile ({@link SandboxProfile}). */
    public static final String PROFILE_PROPERTY = "fhirbridge.profile";

    /** Spring properties of the SMART authorization server ({@link SmartSettings}). */
    public static final String SMART_ISSUER_PROPERTY = "fhirbridge.smart.issuer";

    public static final String SMART_JWKS_PROPERTY = "fhirbridge.smart.jwks-url";
    public static final String SMART_TOKEN_PROPERTY = "fhirbridge.smart.token-url";

    private SandboxServer() {}

    public static void main(String[] args) throws Exception {
        String port = envOr("HAPI_PORT", "8080");
        String dataDir = envOr("HAPI_DATA_DIR", "hapi-data");
        boolean validate =
                isTrue(System.getenv("HAPI_VALIDATE")) || isTrue(System.getProperty(VALIDATE_PROPERTY));
        String profile = "open";
        String ig = "";
        Map<String, String> smart = new HashMap<>();
        List<String> passThrough = new ArrayList<>();
        for (String arg : args) {
            if (arg.equals("--validate")) {
                validate = true;
            } else if (arg.startsWith("--validate=")) {
                validate = isTrue(arg.substring("--validate=".length()));
            } else if (arg.startsWith("--port=")) {
                port = arg.substring("--port=".length());
            } else if (arg.startsWith("--data-dir=")) {
                dataDir = arg.substring("--data-dir=".length());
            } else if (arg.startsWith("--ig=")) {
                ig = arg.substring("--ig=".length());
            } else if (arg.startsWith("--profile=")) {
                profile = arg.substring("--profile=".length());
            } else if (arg.startsWith("--smart-issuer=")) {
                smart.put(SMART_ISSUER_PROPERTY, arg.substring("--smart-issuer=".length()));
            } else if (arg.startsWith("--smart-jwks-url=")) {
                smart.put(SMART_JWKS_PROPERTY, arg.substring("--smart-jwks-url=".length()));
            } else if (arg.startsWith("--smart-token-url=")) {
                smart.put(SMART_TOKEN_PROPERTY, arg.substring("--smart-token-url=".length()));
            } else {
                passThrough.add(arg);
            }
        }
        try {
            SandboxProfile.named(profile);
            if (!ig.isBlank()) {
                ImplementationGuide.named(ig);
                if (!validate) {
                    throw new IllegalArgumentException("--ig needs --validate");
                }
            }
            SmartSettings.fromOptions(
                    smart.get(SMART_ISSUER_PROPERTY), smart.get(SMART_JWKS_PROPERTY), smart.get(SMART_TOKEN_PROPERTY));
        } catch (IllegalArgumentException e) {
            System.err.println("fhir-bridge sandbox: " + e.getMessage());
            System.exit(2);
        }
        int portNumber = Integer.parseInt(port);
        Path dataPath = Path.of(dataDir).toAbsolutePath().normalize();
        Files.createDirectories(dataPath);

        SpringApplication app = new SpringApplication(SandboxServer.class);
        Map<String, Object> properties = new HashMap<>(smart);
        properties.put("server.port", Integer.toString(portNumber));
        properties.put(VALIDATE_PROPERTY, Boolean.toString(validate));
        properties.put(DATA_DIR_PROPERTY, dataPath.toString());
        properties.put(PROFILE_PROPERTY, profile);
        properties.put(IG_PROPERTY, ig);
        app.setDefaultProperties(properties);
        app.run(passThrough.toArray(new String[0]));
    }

    private static String envOr(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }

    private static boolean isTrue(String value) {
        if (value == null) {
            return false;
        }
        String v = value.trim().toLowerCase(Locale.ROOT);
        return v.equals("true") || v.equals("1") || v.equals("yes") || v.equals("on");
    }
}
