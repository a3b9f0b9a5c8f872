package org.fhirbridge.sandbox;

import java.io.IOException;
import java.util.Locale;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.NpmPackageValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;

/**
 * An implementation guide package the validating sandbox can load ({@code --ig=NAME}). The
 * packages are the official npm packages, shipped inside the jar ({@code src/main/resources/ig/},
 * sources in {@code sandbox/hapi/ig-SOURCES.md}); nothing is fetched at run time.
 */
public enum ImplementationGuide {
    US_CORE_7("us-core-7", "ig/hl7.fhir.us.core-7.0.0.tgz", "7.0.0"),
    US_CORE_6_1("us-core-6.1", "ig/hl7.fhir.us.core-6.1.0.tgz", "6.1.0");

    private final String optionName;
    private final String resource;
    private final String version;

    ImplementationGuide(String optionName, String resource, String version) {
        this.optionName = optionName;
        this.resource = resource;
        this.version = version;
    }

    public String optionName() {
        return optionName;
    }

    public String version() {
        return version;
    }

    /** The guide of an {@code --ig} value; IllegalArgumentException naming the known ones. */
    public static ImplementationGuide named(String name) {
        String wanted = name.trim().toLowerCase(Locale.ROOT);
        for (ImplementationGuide guide : values()) {
            if (guide.optionName.equals(wanted)) {
                return guide;
            }
        }
        throw new IllegalArgumentException(
                "unknown implementation guide '" + name + "' (known: us-core-7, us-core-6.1)");
    }

    /**
     * The validation support the validator works with: base R4, the package's profiles, value
     * sets and code systems, snapshots generated where a profile lacks one, and terminology
     * checked in memory. Code systems no one here can answer for (SNOMED CT, LOINC, RxNorm,
     * VSAC value sets) give warnings, not errors; value sets shipped in the package are checked.
     */
    public IValidationSupport supportChain(FhirContext context) throws IOException {
        NpmPackageValidationSupport npm = new NpmPackageValidationSupport(context);
        npm.loadPackageFromClasspath("classpath:" + resource);
        UnknownCodeSystemWarningValidationSupport unknown = new UnknownCodeSystemWarningValidationSupport(context);
        unknown.setNonExistentCodeSystemSeverity(IValidationSupport.IssueSeverity.WARNING);
        return new ValidationSupportChain(
                new DefaultProfileValidationSupport(context),
                npm,
                new LanguageValueSets(context),
                new CommonCodeSystemsTerminologyService(context),
                new InMemoryTerminologyServerValidationSupport(context),
                new SnapshotGeneratingValidationSupport(context),
                unknown);
    }
}
