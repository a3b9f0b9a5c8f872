package org.fhirbridge.sandbox;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import ca.uhn.fhir.rest.server.exceptions.ForbiddenOperationException;

/**
 * The system scopes an access token grants, and whether they allow one interaction.
 *
 * <p>SMART v2 ({@code system/Goal.rs}, {@code system/*.cruds}: c create, r read, u update, d
 * delete, s search) and v1 ({@code system/Goal.read} = rs, {@code .write} = cud, {@code .*} = all).
 * {@code patient/} and {@code user/} scopes grant nothing to a backend service, and scopes narrowed
 * by a query ({@code system/Observation.rs?category=...}) are not honoured (they grant nothing).
 */
public final class SmartScopes {

    private final Map<String, Set<Character>> granted;

    private SmartScopes(Map<String, Set<Character>> granted) {
        this.granted = granted;
    }

    /** The scopes of a token's {@code scope} claim (space-separated). */
    public static SmartScopes parse(String scopeClaim) {
        Map<String, Set<Character>> granted = new HashMap<>();
        if (scopeClaim != null) {
            for (String scope : scopeClaim.trim().split("\\s+")) {
                addScope(granted, scope);
            }
        }
        return new SmartScopes(granted);
    }

    private static void addScope(Map<String, Set<Character>> granted, String scope) {
        if (!scope.startsWith("system/") || scope.contains("?")) {
            return;
        }
        String body = scope.substring("system/".length());
        int dot = body.lastIndexOf('.');
        if (dot <= 0) {
            return;
        }
        String type = body.substring(0, dot);
        String permissions =
                switch (body.substring(dot + 1)) {
                    case "read" -> "rs";
                    case "write" -> "cud";
                    case "*" -> "cruds";
                    default -> body.substring(dot + 1);
                };
        if (!permissions.matches("c?r?u?d?s?") || permissions.isEmpty()) {
            return;
        }
        Set<Character> set = granted.computeIfAbsent(type, t -> new HashSet<>());
        for (char p : permissions.toCharArray()) {
            set.add(p);
        }
    }

    public boolean permits(String resourceType, char permission) {
        return has("*", permission) || (resourceType != null && has(resourceType, permission));
    }

    private boolean has(String type, char permission) {
        Set<Character> set = granted.get(type);
        return set != null && set.contains(permission);
    }

    /**
     * The permission letter an interaction needs, or 0 when any valid token will do (metadata, the
     * next page of a search already allowed, a Bundle whose entries are judged one by one).
     */
    static char needed(RequestedInteraction interaction) {
        return switch (interaction.kind()) {
            case READ, HISTORY_INSTANCE, INSTANCE_OPERATION -> 'r';
            case SEARCH, HISTORY_TYPE, TYPE_OPERATION, SYSTEM -> 's';
            case CREATE -> 'c';
            case UPDATE, PATCH -> 'u';
            case DELETE -> 'd';
            case PAGE, METADATA, BUNDLE -> 0;
        };
    }

    /** Throws 403 naming the scope needed when the token does not allow {@code interaction}. */
    public void require(RequestedInteraction interaction) {
        char permission = needed(interaction);
        if (permission == 0) {
            return;
        }
        String type = interaction.kind() == RequestedInteraction.Kind.SYSTEM ? "*" : interaction.resourceType();
        if (interaction.kind() == RequestedInteraction.Kind.SYSTEM ? has("*", permission) : permits(type, permission)) {
            return;
        }
        ForbiddenOperationException refusal = new ForbiddenOperationException(
                "the access token's scopes do not allow " + interaction.describe() + ": scope system/" + type + "."
                        + permission + " (or system/" + type + "." + v1Word(permission) + ") is needed");
        refusal.setErrorMessageTrusted(true);
        throw refusal;
    }

    private static String v1Word(char permission) {
        return permission == 'r' || permission == 's' ? "read" : "write";
    }
}
