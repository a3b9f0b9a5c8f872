package org.fhirbridge.sandbox;

import java.util.List;
import java.util.Map;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.validation.IInstanceValidatorModule;
import ca.uhn.fhir.validation.IValidationContext;
import ca.uhn.fhir.validation.IValidatorModule;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationContext;
import ca.uhn.fhir.validation.ValidationOptions;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.CodeableConcept;
import org.hl7.fhir.r4.model.Coding;
import org.hl7.fhir.r4.model.Condition;
import org.hl7.fhir.r4.model.Resource;

/**
 * Validates a resource as a hospital does: against the US Core profile of its resource type,
 * whatever profile it declares (and against the ones it declares, as usual). A Bundle is validated
 * as a whole, and each entry's resource once more against the profile of its type.
 */
public final class ByTypeValidator implements IInstanceValidatorModule {

    private static final String US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/";

    /** The US Core profile of each resource type that has exactly one (Condition: see below). */
    static final Map<String, String> PROFILE_OF_TYPE = Map.ofEntries(
            Map.entry("Patient", US_CORE + "us-core-patient"),
            Map.entry("Practitioner", US_CORE + "us-core-practitioner"),
            Map.entry("PractitionerRole", US_CORE + "us-core-practitionerrole"),
            Map.entry("Organization", US_CORE + "us-core-organization"),
            Map.entry("CarePlan", US_CORE + "us-core-careplan"),
            Map.entry("CareTeam", US_CORE + "us-core-careteam"),
            Map.entry("Goal", US_CORE + "us-core-goal"),
            Map.entry("ServiceRequest", US_CORE + "us-core-servicerequest"),
            Map.entry("MedicationRequest", US_CORE + "us-core-medicationrequest"),
            Map.entry("Medication", US_CORE + "us-core-medication"),
            Map.entry("Encounter", US_CORE + "us-core-encounter"),
            Map.entry("Procedure", US_CORE + "us-core-procedure"),
            Map.entry("Immunization", US_CORE + "us-core-immunization"),
            Map.entry("AllergyIntolerance", US_CORE + "us-core-allergyintolerance"),
            Map.entry("DocumentReference", US_CORE + "us-core-documentreference"),
            Map.entry("Location", US_CORE + "us-core-location"),
            Map.entry("RelatedPerson", US_CORE + "us-core-relatedperson"));

    private final IValidatorModule delegate;
    private final FhirContext context;

    public ByTypeValidator(IValidatorModule delegate, FhirContext context) {
        this.delegate = delegate;
        this.context = context;
    }

    /** The US Core profile a hospital checks this resource against (null: none for its type). */
    public static String profileFor(IBaseResource resource) {
        if (resource instanceof Condition condition) {
            return isEncounterDiagnosis(condition.getCategory())
                    ? US_CORE + "us-core-condition-encounter-diagnosis"
                    : US_CORE + "us-core-condition-problems-health-concerns";
        }
        return PROFILE_OF_TYPE.get(resource.fhirType());
    }

    private static boolean isEncounterDiagnosis(List<CodeableConcept> categories) {
        for (CodeableConcept category : categories) {
            for (Coding coding : category.getCoding()) {
                if ("encounter-diagnosis".equals(coding.getCode())) {
                    return true;
                }
            }
        }
        return false;
    }

    @Override
    public void validateResource(IValidationContext<IBaseResource> outer) {
        IBaseResource resource = outer.getResource();
        String profile = profileFor(resource);
        if (profile == null) {
            delegate.validateResource(outer);
        } else {
            validateInto(outer, outer.getResourceAsString(), withProfile(outer.getOptions(), profile), "");
        }
        if (resource instanceof Bundle bundle) {
            List<Bundle.BundleEntryComponent> entries = bundle.getEntry();
            for (int i = 0; i < entries.size(); i++) {
                Resource entry = entries.get(i).getResource();
                String entryProfile = entry == null ? null : profileFor(entry);
                if (entryProfile == null) {
                    continue;
                }
                String text = context.newJsonParser().encodeResourceToString(entry);
                validateInto(
                        outer, text, withProfile(new ValidationOptions(), entryProfile), "Bundle.entry[" + i + "].resource");
            }
        }
    }

    private void validateInto(
            IValidationContext<IBaseResource> outer, String text, ValidationOptions options, String prefix) {
        IValidationContext<IBaseResource> inner = ValidationContext.forText(context, text, options);
        delegate.validateResource(inner);
        for (SingleValidationMessage message : inner.getMessages()) {
            if (!prefix.isEmpty()) {
                String location = message.getLocationString();
                message.setLocationString(prefix + (location == null ? "" : " > " + location));
            }
            outer.addValidationMessage(message);
        }
    }

    private static ValidationOptions withProfile(ValidationOptions options, String profile) {
        ValidationOptions copy = new ValidationOptions();
        if (options != null) {
            for (String declared : options.getProfiles()) {
                copy.addProfile(declared);
            }
        }
        copy.addProfile(profile);
        return copy;
    }
}
