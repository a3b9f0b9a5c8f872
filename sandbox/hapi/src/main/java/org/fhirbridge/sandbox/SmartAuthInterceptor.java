package org.fhirbridge.sandbox;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import org.hl7.fhir.instance.model.api.IBaseBundle;
import org.hl7.fhir.r4.model.Bundle;

/**
 * The SMART resource server: every request but {@code /metadata} needs a valid bearer token (401
 * otherwise), and the token's system scopes must allow the interaction (403 otherwise); a batch's
 * entries are judged one by one, a transaction's all before any is done.
 */
@Interceptor
public final class SmartAuthInterceptor {

    static final int ORDER = 0;
    private static final String SCOPES = "fhirbridge.smart.scopes";

    private final SmartTokenVerifier verifier;

    public SmartAuthInterceptor(SmartTokenVerifier verifier) {
        this.verifier = verifier;
    }

    @Hook(value = Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED, order = ORDER)
    public void authorizeRequest(RequestDetails request, RestOperationTypeEnum operation) {
        if (operation == RestOperationTypeEnum.METADATA) {
            return;
        }
        SmartScopes scopes = verifier.verify(request.getHeader("Authorization"));
        request.getUserData().put(SCOPES, scopes);
        scopes.require(RequestedInteraction.of(request, operation));
    }

    @Hook(value = Pointcut.STORAGE_TRANSACTION_PROCESSING, order = ORDER)
    public void authorizeEntries(RequestDetails request, IBaseBundle bundle) {
        Object scopes = request == null ? null : request.getUserData().get(SCOPES);
        if (!(scopes instanceof SmartScopes granted) || !(bundle instanceof Bundle r4)) {
            return; // the server's own work (subscription delivery, jobs): no client request
        }
        if (r4.getType() == Bundle.BundleType.BATCH) {
            return; // its entries come one by one, each in a Bundle of its own
        }
        for (Bundle.BundleEntryComponent entry : r4.getEntry()) {
            granted.require(RequestedInteraction.of(entry));
        }
    }
}
