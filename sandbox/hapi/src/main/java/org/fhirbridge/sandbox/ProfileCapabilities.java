package org.fhirbridge.sandbox;

import java.util.Set;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import org.hl7.fhir.instance.model.api.IBaseConformance;
import org.hl7.fhir.r4.model.CapabilityStatement;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.CapabilityStatementRestResourceComponent;
import org.hl7.fhir.r4.model.CapabilityStatement.ConditionalDeleteStatus;
import org.hl7.fhir.r4.model.CapabilityStatement.ResourceVersionPolicy;
import org.hl7.fhir.r4.model.CapabilityStatement.SystemRestfulInteraction;
import org.hl7.fhir.r4.model.CapabilityStatement.TypeRestfulInteraction;
import org.hl7.fhir.r4.model.CodeableConcept;
import org.hl7.fhir.r4.model.Extension;
import org.hl7.fhir.r4.model.UriType;

/**
 * Makes the CapabilityStatement tell the truth about the profile and the SMART setting: what a
 * read-only type allows, conditional writes, {@code If-Match}, {@code _lastUpdated}, transactions,
 * and where to get a token ({@code rest.security}).
 */
@Interceptor
public final class ProfileCapabilities {

    static final String OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";
    static final String SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service";

    private static final Set<TypeRestfulInteraction> READ_ONLY =
            Set.of(TypeRestfulInteraction.READ, TypeRestfulInteraction.SEARCHTYPE);

    private final SandboxProfile profile;
    private final SmartSettings smart;

    public ProfileCapabilities(SandboxProfile profile, SmartSettings smart) {
        this.profile = profile;
        this.smart = smart;
    }

    @Hook(Pointcut.SERVER_CAPABILITY_STATEMENT_GENERATED)
    public void describe(IBaseConformance statement) {
        if (!(statement instanceof CapabilityStatement capabilities)) {
            return;
        }
        if (!profile.isOpen()) {
            capabilities.getImplementation()
                    .setDescription("fhir-bridge sandbox, profile " + profile.name()
                            + " (HAPI FHIR JPA server, R4, H2)");
        }
        for (CapabilityStatementRestComponent rest : capabilities.getRest()) {
            if (!profile.isOpen()) {
                // HAPI declares transaction only, though it also takes batches: say both as they are
                rest.getInteraction().removeIf(i -> i.getCode() == SystemRestfulInteraction.TRANSACTION
                        || i.getCode() == SystemRestfulInteraction.BATCH);
                rest.addInteraction().setCode(SystemRestfulInteraction.BATCH);
                if (profile.transactions()) {
                    rest.addInteraction().setCode(SystemRestfulInteraction.TRANSACTION);
                }
            }
            for (CapabilityStatementRestResourceComponent resource : rest.getResource()) {
                describe(resource);
            }
            if (smart != null) {
                rest.setSecurity(security());
            }
        }
    }

    private void describe(CapabilityStatementRestResourceComponent resource) {
        String type = resource.getType();
        if (profile.isReadOnly(type)) {
            resource.getInteraction().removeIf(i -> !READ_ONLY.contains(i.getCode()));
            resource.setUpdateCreate(false);
            noConditionalWrites(resource);
            resource.setDocumentation("Read and search only on this server: create, update, patch and "
                    + "delete are refused with 405, vread and history with 400 (profile " + profile.name() + ").");
        }
        if (profile.noLastUpdatedTypes().contains(type)) {
            resource.getSearchParam().removeIf(p -> "_lastUpdated".equals(p.getName()));
        }
        if (!profile.conditionalWrites()) {
            noConditionalWrites(resource);
        }
        if (profile.ifMatchRequired() && !profile.isReadOnly(type)) {
            resource.setVersioning(ResourceVersionPolicy.VERSIONEDUPDATE);
            resource.setUpdateCreate(false); // no version to name before the resource exists
            resource.setDocumentation("An update must carry If-Match with the version it replaces: "
                    + "refused with 412 without it (profile " + profile.name() + ").");
        }
    }

    private static void noConditionalWrites(CapabilityStatementRestResourceComponent resource) {
        resource.setConditionalCreate(false);
        resource.setConditionalUpdate(false);
        resource.setConditionalDelete(ConditionalDeleteStatus.NOTSUPPORTED);
    }

    private CapabilityStatement.CapabilityStatementRestSecurityComponent security() {
        CapabilityStatement.CapabilityStatementRestSecurityComponent security =
                new CapabilityStatement.CapabilityStatementRestSecurityComponent();
        CodeableConcept service = security.addService();
        service.addCoding().setSystem(SECURITY_SERVICE).setCode("SMART-on-FHIR");
        service.setText("OAuth2 using SMART-on-FHIR profile (SMART Backend Services)");
        Extension uris = security.addExtension().setUrl(OAUTH_URIS);
        uris.addExtension(new Extension("token", new UriType(smart.tokenUrl())));
        security.setDescription("SMART Backend Services: client_credentials with private_key_jwt; "
                + "system scopes; see .well-known/smart-configuration");
        return security;
    }
}
