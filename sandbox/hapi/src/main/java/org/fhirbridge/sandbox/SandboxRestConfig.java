package org.fhirbridge.sandbox;

import java.io.IOException;
import java.util.List;

import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.SubscriptionTriggeringProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.ETagSupportEnum;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.LoggingInterceptor;
import ca.uhn.fhir.rest.server.interceptor.RequestValidatingInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import ca.uhn.fhir.validation.IInstanceValidatorModule;
import ca.uhn.fhir.validation.IValidatorModule;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** REST side of the sandbox: the HAPI {@link RestfulServer} servlet mounted at {@code /fhir/*}. */
@Configuration
public class SandboxRestConfig {

    private static final Logger LOG = LoggerFactory.getLogger(SandboxRestConfig.class);

    @Bean
    public RestfulServer restfulServer(
            IFhirSystemDao<?, ?> systemDao,
            ResourceProviderFactory resourceProviderFactory,
            IJpaSystemProvider systemProvider,
            JpaStorageSettings storageSettings,
            ISearchParamRegistry searchParamRegistry,
            IValidationSupport validationSupport,
            DatabaseBackedPagingProvider pagingProvider,
            BulkDataExportProvider bulkDataExportProvider,
            SubscriptionTriggeringProvider subscriptionTriggeringProvider,
            IInstanceValidatorModule instanceValidator,
            SandboxOptions.Guards guards,
            @Value("${" + SandboxServer.VALIDATE_PROPERTY + ":false}") boolean validate,
            @Value("${" + SandboxServer.IG_PROPERTY + ":}") String ig)
            throws IOException {
        RestfulServer server = new RestfulServer(systemDao.getContext());
        server.getFhirContext().setNarrativeGenerator(new NullNarrativeGenerator());

        // Resource types, system level (transaction, batch, _history) and $export.
        server.registerProviders(resourceProviderFactory.createProviders());
        server.registerProvider(systemProvider);
        server.registerProvider(bulkDataExportProvider);
        server.registerProvider(subscriptionTriggeringProvider);

        @SuppressWarnings({"unchecked", "rawtypes"})
        JpaCapabilityStatementProvider capabilities =
                new JpaCapabilityStatementProvider(
                        server, (IFhirSystemDao) systemDao, storageSettings, searchParamRegistry, validationSupport);
        capabilities.setImplementationDescription("fhir-bridge sandbox (HAPI FHIR JPA server, R4, H2)");
        server.setServerConformanceProvider(capabilities);

        server.setETagSupport(ETagSupportEnum.ENABLED);
        server.setDefaultResponseEncoding(EncodingEnum.JSON);
        server.setDefaultPrettyPrint(false);
        server.setPagingProvider(pagingProvider);
        server.setServerAddressStrategy(new IncomingRequestAddressStrategy());

        LoggingInterceptor requestLog = new LoggingInterceptor();
        requestLog.setLoggerName("fhirbridge.sandbox.requests");
        requestLog.setMessageFormat(
                "${requestVerb} ${requestUrl}${requestParameters} -> ${operationType} ${processingTimeMillis}ms");
        requestLog.setErrorMessageFormat("ERROR ${requestVerb} ${requestUrl}${requestParameters} - ${exceptionMessage}");
        requestLog.setLogExceptions(true);
        server.registerInterceptor(requestLog);

        // SMART resource-server checks and the profile's refusals (docs/sandbox.md)
        guards.register(server);

        if (validate) {
            ImplementationGuide guide = ig.isBlank() ? null : ImplementationGuide.named(ig);
            IValidatorModule module = instanceValidator;
            if (instanceValidator instanceof FhirInstanceValidator instance) {
                // a profile the server has no copy of (Gravity, or US Core without --ig) is noted,
                // not an error; everything the loaded definitions say is still enforced
                instance.setErrorForUnknownProfiles(false);
                if (guide != null) {
                    // the same validator serves $validate, so it sees the guide too
                    instance.setValidationSupport(guide.supportChain(server.getFhirContext()));
                    module = new ByTypeValidator(instance, server.getFhirContext());
                }
            }
            RequestValidatingInterceptor validating = new RequestValidatingInterceptor();
            validating.setFailOnSeverity(ResultSeverityEnum.ERROR);
            validating.setValidatorModules(List.of(module));
            validating.setAddResponseHeaderOnSeverity(null);
            server.registerInterceptor(validating);
            if (guide == null) {
                LOG.info("Request validation against base FHIR R4 is ON (requests with ERROR issues are refused)");
            } else {
                LOG.info(
                        "Request validation against US Core {} by resource type is ON (requests with ERROR issues are refused)",
                        guide.version());
            }
        } else {
            LOG.info("Request validation is OFF");
        }
        return server;
    }

    @Bean
    public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer restfulServer) {
        ServletRegistrationBean<RestfulServer> registration =
                new ServletRegistrationBean<>(restfulServer, "/fhir/*");
        registration.setName("fhir");
        registration.setLoadOnStartup(1);
        return registration;
    }
}
