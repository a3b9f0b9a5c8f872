package org.fhirbridge.sandbox;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

/**
 * {@code GET [base]/.well-known/smart-configuration}: where to get a token and how (SMART App Launch
 * 2.x discovery), served without authentication. 404 when the sandbox runs without SMART.
 */
public final class SmartConfigurationServlet extends HttpServlet {

    public static final String PATH = "/fhir/.well-known/smart-configuration";

    private final transient SmartSettings smart;

    public SmartConfigurationServlet(SmartSettings smart) {
        this.smart = smart;
    }

    static Map<String, Object> document(SmartSettings smart) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("issuer", smart.issuer());
        doc.put("jwks_uri", smart.jwksUrl());
        doc.put("token_endpoint", smart.tokenUrl());
        doc.put("grant_types_supported", List.of("client_credentials"));
        doc.put("token_endpoint_auth_methods_supported", List.of("private_key_jwt"));
        doc.put("token_endpoint_auth_signing_alg_values_supported", List.of("RS384", "ES384"));
        doc.put("scopes_supported", List.of(
                "system/*.cruds", "system/*.rs", "system/*.read", "system/*.write",
                "system/Patient.rs", "system/CarePlan.rs", "system/Goal.rs",
                "system/ServiceRequest.cruds", "system/Task.cruds"));
        doc.put("response_types_supported", List.of("token"));
        doc.put("capabilities", List.of("client-confidential-asymmetric", "permission-v1", "permission-v2"));
        return doc;
    }

    @Override
    protected void doGet(HttpServletRequest request, HttpServletResponse response) throws IOException {
        response.setCharacterEncoding(StandardCharsets.UTF_8.name());
        response.setContentType("application/json");
        if (smart == null) {
            response.setStatus(HttpServletResponse.SC_NOT_FOUND);
            response.getWriter().write("{\"error\":\"not_found\",\"error_description\":"
                    + "\"this sandbox runs without SMART authorization\"}");
            return;
        }
        response.setHeader("Cache-Control", "no-store");
        response.getWriter().write(new ObjectMapper().writeValueAsString(document(smart)));
    }
}
