package org.fhirbridge.sandbox;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.BaseServerResponseException;
import org.hl7.fhir.instance.model.api.IBaseBundle;
import org.hl7.fhir.r4.model.Bundle;

/**
 * Makes the server refuse what its {@link SandboxProfile} does not allow: plain requests before
 * HAPI handles them, a transaction as a whole, and each entry of a batch on its own (HAPI answers
 * a refused entry with its status and an OperationOutcome in the batch-response).
 *
 * <p>A request with {@code X-Sandbox-Clinician: true} stands for what clinicians do in the EHR's
 * own user interface (edit a Goal the API only reads): the profile's refusals do not apply to it.
 * SMART checks still do.
 */
@Interceptor
public final class ProfileInterceptor {

    /** After the SMART checks (order 0): a client without the right token learns nothing more. */
    static final int ORDER = 100;

    /** The header that marks a request as a clinician's edit in the EHR itself. */
    public static final String CLINICIAN_HEADER = "X-Sandbox-Clinician";

    private final ProfileRules rules;

    public ProfileInterceptor(ProfileRules rules) {
        this.rules = rules;
    }

    @Hook(value = Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED, order = ORDER)
    public void checkRequest(RequestDetails request, RestOperationTypeEnum operation) {
        if (isClinician(request)) {
            return;
        }
        RequestedInteraction interaction = RequestedInteraction.of(request, operation);
        if (interaction.kind() == RequestedInteraction.Kind.BUNDLE) {
            return; // judged below, once HAPI has parsed the Bundle
        }
        rules.check(interaction);
    }

    @Hook(value = Pointcut.STORAGE_TRANSACTION_PROCESSING, order = ORDER)
    public void checkBundle(RequestDetails request, IBaseBundle bundle) {
        if (isClinician(request)) {
            return;
        }
        switch (BundleRequests.shape(request, bundle)) {
            case TRANSACTION -> {
                BaseServerResponseException refusal = rules.transactionRefusal();
                if (refusal != null) {
                    throw refusal;
                }
                for (Bundle.BundleEntryComponent entry : ((Bundle) bundle).getEntry()) {
                    rules.check(RequestedInteraction.of(entry));
                }
            }
            case BATCH_ENTRY -> {
                for (Bundle.BundleEntryComponent entry : ((Bundle) bundle).getEntry()) {
                    rules.check(RequestedInteraction.of(entry));
                }
            }
            default -> {
                // a batch as a whole is fine: its entries come here one by one
            }
        }
    }

    private static boolean isClinician(RequestDetails request) {
        return request != null && "true".equalsIgnoreCase(request.getHeader(CLINICIAN_HEADER));
    }
}
