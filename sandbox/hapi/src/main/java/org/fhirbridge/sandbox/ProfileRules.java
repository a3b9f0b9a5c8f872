package org.fhirbridge.sandbox;

import ca.uhn.fhir.rest.api.RequestTypeEnum;
import ca.uhn.fhir.rest.server.exceptions.BaseServerResponseException;
import ca.uhn.fhir.rest.server.exceptions.InvalidRequestException;
import ca.uhn.fhir.rest.server.exceptions.MethodNotAllowedException;
import ca.uhn.fhir.rest.server.exceptions.PreconditionFailedException;

/**
 * The refusals of one {@link SandboxProfile}, judged on one {@link RequestedInteraction}. Each
 * refusal is an HAPI exception, which HAPI answers with its status and an OperationOutcome (in a
 * batch, as that entry's response).
 */
public final class ProfileRules {

    private final SandboxProfile profile;

    public ProfileRules(SandboxProfile profile) {
        this.profile = profile;
    }

    public SandboxProfile profile() {
        return profile;
    }

    /** Throws the profile's refusal of {@code interaction}; returns when it is allowed. */
    public void check(RequestedInteraction interaction) {
        BaseServerResponseException refusal = refusal(interaction);
        if (refusal != null) {
            throw refusal;
        }
    }

    /** The refusal of {@code interaction}, or null when the profile allows it. */
    public BaseServerResponseException refusal(RequestedInteraction interaction) {
        String type = interaction.resourceType();
        if (interaction.kind().isWrite() && profile.isReadOnly(type)) {
            // 405 with Allow: the resource exists, but this server only reads and searches it
            return trusted(new MethodNotAllowedException(
                    type + " is read-only on this server (profile " + profile.name() + "): "
                            + interaction.describe() + " is not allowed; read and search are",
                    RequestTypeEnum.GET));
        }
        if ((interaction.kind() == RequestedInteraction.Kind.HISTORY_INSTANCE
                        || interaction.kind() == RequestedInteraction.Kind.HISTORY_TYPE)
                && profile.isReadOnly(type)) {
            return trusted(new InvalidRequestException(
                    interaction.describe() + " is not supported on this server (profile " + profile.name()
                            + "): " + type + " offers read and search only"));
        }
        if (interaction.kind() == RequestedInteraction.Kind.SEARCH
                && type != null
                && profile.noLastUpdatedTypes().contains(type)
                && interaction.params().contains("_lastUpdated")) {
            return trusted(new InvalidRequestException(
                    "search parameter _lastUpdated is not supported for " + type + " on this server (profile "
                            + profile.name() + ")"));
        }
        if (interaction.conditional() && !profile.conditionalWrites()) {
            return trusted(new InvalidRequestException(
                    interaction.describe() + " is not supported on this server (profile " + profile.name()
                            + "): write by id, after a search"));
        }
        if (interaction.kind() == RequestedInteraction.Kind.UPDATE
                && profile.ifMatchRequired()
                && !interaction.ifMatch()) {
            // 412, as Oracle Health's Millennium server answers an update without If-Match
            return trusted(new PreconditionFailedException(
                    "If-Match is required on update on this server (profile " + profile.name()
                            + "): send the version read (If-Match: W/\"n\")"));
        }
        return null;
    }

    /** The refusal of a whole transaction Bundle, or null when transactions are accepted. */
    public BaseServerResponseException transactionRefusal() {
        if (profile.transactions()) {
            return null;
        }
        return trusted(new MethodNotAllowedException(
                "transactions are not supported on this server (profile " + profile.name()
                        + "): send a batch, or one request per resource",
                RequestTypeEnum.GET));
    }

    private static BaseServerResponseException trusted(BaseServerResponseException exception) {
        exception.setErrorMessageTrusted(true);
        return exception;
    }
}
