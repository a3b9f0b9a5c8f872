package org.fhirbridge.sandbox;

import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import org.apache.commons.lang3.StringUtils;
import org.hl7.fhir.r4.model.Bundle;

/**
 * One interaction a client asks for, described the same way whether it came as an HTTP request
 * or as an entry of a batch Bundle: the profile rules and the SMART scope check judge this.
 *
 * @param kind what is asked for
 * @param resourceType the resource type (null for system-level interactions)
 * @param conditional a create with {@code If-None-Exist}, or an update/patch/delete by search URL
 * @param ifMatch whether {@code If-Match} was sent
 * @param params the names of the URL's search parameters
 */
public record RequestedInteraction(
        Kind kind, String resourceType, boolean conditional, boolean ifMatch, Set<String> params) {

    /** The interactions the rules tell apart. */
    public enum Kind {
        READ,
        SEARCH,
        /** vread and the history of one instance */
        HISTORY_INSTANCE,
        /** the history of a type */
        HISTORY_TYPE,
        CREATE,
        UPDATE,
        PATCH,
        DELETE,
        TYPE_OPERATION,
        INSTANCE_OPERATION,
        SYSTEM,
        PAGE,
        METADATA,
        BUNDLE;

        public boolean isWrite() {
            return this == CREATE || this == UPDATE || this == PATCH || this == DELETE;
        }
    }

    /** A request as HAPI has routed it. */
    public static RequestedInteraction of(RequestDetails request, RestOperationTypeEnum operation) {
        String type = request.getResourceName();
        boolean hasId = request.getId() != null && request.getId().hasIdPart();
        boolean ifMatch = StringUtils.isNotBlank(request.getHeader("If-Match"));
        Set<String> params = paramNames(request.getParameters());
        Kind kind = kindOf(operation);
        boolean conditional =
                switch (kind) {
                    case CREATE -> StringUtils.isNotBlank(request.getHeader("If-None-Exist"));
                    case UPDATE, PATCH, DELETE -> !hasId;
                    default -> false;
                };
        return new RequestedInteraction(kind, type, conditional, ifMatch, params);
    }

    /** One entry of a batch or transaction Bundle. */
    public static RequestedInteraction of(Bundle.BundleEntryComponent entry) {
        Bundle.BundleEntryRequestComponent request = entry.getRequest();
        String method = request.getMethod() == null ? "" : request.getMethod().toCode();
        String url = StringUtils.defaultString(request.getUrl());
        String path = StringUtils.substringBefore(url, "?");
        String query = url.contains("?") ? StringUtils.substringAfter(url, "?") : "";
        String[] parts = StringUtils.split(path, '/');
        String type = parts.length > 0 && !parts[0].startsWith("$") ? parts[0] : null;
        String second = parts.length > 1 ? parts[1] : null;
        boolean operation = path.contains("$");
        boolean hasId = second != null && !second.startsWith("$") && !second.startsWith("_");
        boolean history = path.contains("_history");
        Kind kind;
        if (type == null) {
            kind = Kind.SYSTEM;
        } else if (operation) {
            kind = hasId ? Kind.INSTANCE_OPERATION : Kind.TYPE_OPERATION;
        } else {
            kind =
                    switch (method.toUpperCase(Locale.ROOT)) {
                        case "GET", "HEAD" -> history
                                ? (hasId ? Kind.HISTORY_INSTANCE : Kind.HISTORY_TYPE)
                                : (hasId ? Kind.READ : Kind.SEARCH);
                        case "POST" -> "_search".equals(second) ? Kind.SEARCH : Kind.CREATE;
                        case "PUT" -> Kind.UPDATE;
                        case "PATCH" -> Kind.PATCH;
                        case "DELETE" -> Kind.DELETE;
                        default -> Kind.SYSTEM;
                    };
        }
        boolean conditional =
                switch (kind) {
                    case CREATE -> StringUtils.isNotBlank(request.getIfNoneExist());
                    case UPDATE, PATCH, DELETE -> !hasId;
                    default -> false;
                };
        Set<String> params = new LinkedHashSet<>();
        for (String pair : StringUtils.split(query, '&')) {
            params.add(StringUtils.substringBefore(StringUtils.substringBefore(pair, "="), ":"));
        }
        return new RequestedInteraction(kind, type, conditional, StringUtils.isNotBlank(request.getIfMatch()), params);
    }

    private static Kind kindOf(RestOperationTypeEnum operation) {
        if (operation == null) {
            return Kind.SYSTEM;
        }
        return switch (operation) {
            case READ, GET_TAGS, META -> Kind.READ;
            case VREAD, HISTORY_INSTANCE -> Kind.HISTORY_INSTANCE;
            case SEARCH_TYPE -> Kind.SEARCH;
            case HISTORY_TYPE -> Kind.HISTORY_TYPE;
            case CREATE -> Kind.CREATE;
            case UPDATE, UPDATE_REWRITE_HISTORY, ADD_TAGS, DELETE_TAGS, META_ADD, META_DELETE -> Kind.UPDATE;
            case PATCH -> Kind.PATCH;
            case DELETE -> Kind.DELETE;
            case EXTENDED_OPERATION_TYPE, VALIDATE -> Kind.TYPE_OPERATION;
            case EXTENDED_OPERATION_INSTANCE -> Kind.INSTANCE_OPERATION;
            case GET_PAGE -> Kind.PAGE;
            case METADATA -> Kind.METADATA;
            case TRANSACTION, BATCH -> Kind.BUNDLE;
            default -> Kind.SYSTEM;
        };
    }

    private static Set<String> paramNames(Map<String, String[]> parameters) {
        Set<String> names = new LinkedHashSet<>();
        if (parameters != null) {
            for (String name : parameters.keySet()) {
                names.add(StringUtils.substringBefore(name, ":"));
            }
        }
        return names;
    }

    /** Words for messages: "update of Goal", "search on Task". */
    public String describe() {
        String what =
                switch (kind) {
                    case HISTORY_INSTANCE -> "vread or history";
                    case HISTORY_TYPE -> "history";
                    default -> kind.name().toLowerCase(Locale.ROOT).replace('_', ' ');
                };
        if (conditional) {
            what = "conditional " + what;
        }
        return resourceType == null ? what : what + (kind == Kind.SEARCH ? " on " : " of ") + resourceType;
    }
}
