package org.fhirbridge.sandbox;

import ca.uhn.fhir.rest.api.server.RequestDetails;
import org.hl7.fhir.instance.model.api.IBaseBundle;
import org.hl7.fhir.r4.model.Bundle;

/**
 * Telling a transaction from the entries of a batch. HAPI hands the {@code
 * STORAGE_TRANSACTION_PROCESSING} hook first the Bundle as received, then, for a batch, each entry
 * wrapped in a one-entry Bundle of type transaction (with the same request). The first sight of a
 * batch marks the request, so that the later one-entry Bundles are known as batch entries.
 */
final class BundleRequests {

    private static final String BATCH_MARK = "fhirbridge.batch";

    private BundleRequests() {}

    /** What the hook was handed. */
    enum Shape {
        /** A batch as received (its entries come one by one afterwards). */
        BATCH,
        /** One entry of a batch, wrapped. */
        BATCH_ENTRY,
        /** A transaction as received. */
        TRANSACTION,
        /** Anything else (a Bundle type HAPI refuses on its own, or not R4). */
        OTHER
    }

    static Shape shape(RequestDetails request, IBaseBundle bundle) {
        if (!(bundle instanceof Bundle r4)) {
            return Shape.OTHER;
        }
        Bundle.BundleType type = r4.getType();
        if (type == Bundle.BundleType.BATCH) {
            if (request != null) {
                request.getUserData().put(BATCH_MARK, Boolean.TRUE);
            }
            return Shape.BATCH;
        }
        if (type == Bundle.BundleType.TRANSACTION) {
            boolean inBatch = request != null && Boolean.TRUE.equals(request.getUserData().get(BATCH_MARK));
            return inBatch ? Shape.BATCH_ENTRY : Shape.TRANSACTION;
        }
        return Shape.OTHER;
    }
}
