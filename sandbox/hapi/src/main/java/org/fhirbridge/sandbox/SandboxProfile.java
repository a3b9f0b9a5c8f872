package org.fhirbridge.sandbox;

import java.util.List;
import java.util.Set;

/**
 * What one kind of EHR refuses. {@code open} refuses nothing (the plain HAPI sandbox); the
 * vendor-like profiles stand for the rules real hospital FHIR servers apply (docs/sandbox.md
 * names the vendor behaviour behind each rule).
 *
 * @param name the option value ({@code --profile=NAME})
 * @param readOnlyTypes resource types that can be read and searched but not written
 * @param noLastUpdatedTypes resource types whose searches refuse {@code _lastUpdated}
 * @param transactions whether {@code Bundle.type = transaction} is accepted (batch always is)
 * @param conditionalWrites whether conditional create, update, patch and delete are accepted
 * @param ifMatchRequired whether an update must carry {@code If-Match} (the version it replaces)
 */
public record SandboxProfile(
        String name,
        Set<String> readOnlyTypes,
        Set<String> noLastUpdatedTypes,
        boolean transactions,
        boolean conditionalWrites,
        boolean ifMatchRequired) {

    /** Today's sandbox: everything HAPI does. */
    public static final SandboxProfile OPEN = new SandboxProfile("open", Set.of(), Set.of(), true, true, false);

    /** Epic-like: CarePlan and Goal read-only, no {@code _lastUpdated} on the care types, no transactions. */
    public static final SandboxProfile EPIC_LIKE = new SandboxProfile(
            "epic-like",
            Set.of("CarePlan", "Goal"),
            Set.of("CarePlan", "Goal", "ServiceRequest", "Task"),
            false,
            true,
            false);

    /** Oracle-Health-like: batch only, no conditional writes, {@code If-Match} required on update. */
    public static final SandboxProfile ORACLE_LIKE =
            new SandboxProfile("oracle-like", Set.of(), Set.of(), false, false, true);

    public static final List<SandboxProfile> ALL = List.of(OPEN, EPIC_LIKE, ORACLE_LIKE);

    /** The profile of that name; {@link IllegalArgumentException} naming the known ones otherwise. */
    public static SandboxProfile named(String name) {
        for (SandboxProfile profile : ALL) {
            if (profile.name.equals(name)) {
                return profile;
            }
        }
        throw new IllegalArgumentException(
                "unknown profile '" + name + "' (known: open, epic-like, oracle-like)");
    }

    public boolean isOpen() {
        return this.equals(OPEN);
    }

    public boolean isReadOnly(String resourceType) {
        return resourceType != null && readOnlyTypes.contains(resourceType);
    }
}
