package org.fhirbridge.sandbox;

import java.util.Set;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.ConceptValidationOptions;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.context.support.ValidationSupportContext;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.instance.model.api.IBaseResource;

/**
 * The language value sets (R4's {@code languages} and {@code all-languages}, US Core's {@code
 * simple-language}) are defined by filters on BCP-47, which the in-memory terminology service
 * cannot expand: without this, a valid tag such as {@code vi} fails validation offline. A code
 * of {@code urn:ietf:bcp:47} is in these value sets when it is a well-formed tag of a known
 * language (checked by HAPI's built-in BCP-47 support).
 */
final class LanguageValueSets implements IValidationSupport {

    private static final String BCP_47 = "urn:ietf:bcp:47";
    private static final Set<String> VALUE_SETS = Set.of(
            "http://hl7.org/fhir/ValueSet/languages",
            "http://hl7.org/fhir/ValueSet/all-languages",
            "http://hl7.org/fhir/us/core/ValueSet/simple-language");

    private final FhirContext context;
    private final CommonCodeSystemsTerminologyService common;

    LanguageValueSets(FhirContext context) {
        this.context = context;
        this.common = new CommonCodeSystemsTerminologyService(context);
    }

    @Override
    public FhirContext getFhirContext() {
        return context;
    }

    @Override
    public String getName() {
        return "fhir-bridge language value sets";
    }

    private static boolean ours(String valueSetUrl) {
        return valueSetUrl != null && VALUE_SETS.contains(valueSetUrl.split("\\|")[0]);
    }

    @Override
    public boolean isValueSetSupported(ValidationSupportContext support, String valueSetUrl) {
        return ours(valueSetUrl);
    }

    @Override
    public CodeValidationResult validateCode(
            ValidationSupportContext support,
            ConceptValidationOptions options,
            String system,
            String code,
            String display,
            String valueSetUrl) {
        if (!ours(valueSetUrl) || !BCP_47.equals(system)) {
            return null;
        }
        return common.validateCode(support, options, system, code, display, null);
    }

    @Override
    public CodeValidationResult validateCodeInValueSet(
            ValidationSupportContext support,
            ConceptValidationOptions options,
            String system,
            String code,
            String display,
            IBaseResource valueSet) {
        String url = context.newTerser().getSinglePrimitiveValueOrNull(valueSet, "url");
        return validateCode(support, options, system, code, display, url);
    }
}
