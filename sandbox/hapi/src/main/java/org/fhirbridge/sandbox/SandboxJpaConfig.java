package org.fhirbridge.sandbox;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import javax.sql.DataSource;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.IDaoRegistry;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.config.util.ResourceCountCacheUtil;
import ca.uhn.fhir.jpa.dao.FulltextSearchSvcImpl;
import ca.uhn.fhir.jpa.dao.IFulltextSearchSvc;
import ca.uhn.fhir.jpa.dao.search.HSearchSortHelperImpl;
import ca.uhn.fhir.jpa.dao.search.IHSearchSortHelper;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.provider.DaoRegistryResourceSupportedSvc;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.search.IStaleSearchDeletingSvc;
import ca.uhn.fhir.jpa.search.StaleSearchDeletingSvcImpl;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import ca.uhn.fhir.jpa.util.ResourceCountCache;
import ca.uhn.fhir.rest.api.IResourceSupportedSvc;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import org.apache.commons.dbcp2.BasicDataSource;
import org.hl7.fhir.dstu2.model.Subscription.SubscriptionChannelType;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * Storage side of the sandbox: HAPI's R4 JPA configuration plus the beans it expects the
 * application to supply (settings, H2 data source, entity manager factory, transaction manager,
 * search helpers), the subscription matcher/delivery pipeline with REST-hook channels, and the
 * batch2 jobs behind {@code $export}.
 */
@Configuration
@Import({
    JpaR4Config.class,
    ThreadPoolFactoryConfig.class,
    SubscriptionSubmitterConfig.class,
    SubscriptionProcessorConfig.class,
    SubscriptionChannelConfig.class,
    JpaBatch2Config.class,
    Batch2JobsConfig.class
})
public class SandboxJpaConfig {

    /** How often batch2 maintenance runs (HAPI's default is one minute). */
    static final long BATCH_MAINTENANCE_MILLIS = 5_000;

    @Bean
    public JpaStorageSettings jpaStorageSettings() {
        JpaStorageSettings settings = new JpaStorageSettings();
        // Every search runs afresh: a poller must see what was written a moment ago.
        settings.setReuseCachedSearchResultsForMillis(null);
        settings.setAllowMultipleDelete(true);
        settings.setExpungeEnabled(true);
        settings.setDeleteExpungeEnabled(true);
        // Full-text indexing needs Hibernate Search, which the sandbox leaves off.
        settings.setHibernateSearchIndexFullText(false);
        settings.setHibernateSearchIndexSearchParams(false);
        settings.setAdvancedHSearchIndexing(false);
        // Bulk export files (Binary resources) are kept for two hours.
        settings.setBulkExportFileRetentionPeriodHours(2);
        // Batch2 jobs ($export) move to their next step as soon as a step is done, instead of
        // waiting for the next maintenance pass.
        settings.setJobFastTrackingEnabled(true);
        return settings;
    }

    @Bean
    public PartitionSettings partitionSettings() {
        return new PartitionSettings();
    }

    @Bean
    public SubscriptionSettings subscriptionSettings() {
        SubscriptionSettings settings = new SubscriptionSettings();
        settings.addSupportedSubscriptionType(SubscriptionChannelType.RESTHOOK);
        // Put Subscription changes on the queue at once, so activation is quick.
        settings.setSubscriptionChangeQueuedImmediately(true);
        settings.setSubscriptionIntervalInMs(1000);
        // Subscriptions point at listeners on this machine.
        settings.setRestHookEndpointUrlValidationRegex(null);
        return settings;
    }

    @Bean(destroyMethod = "close")
    public BasicDataSource dataSource(@Value("${" + SandboxServer.DATA_DIR_PROPERTY + "}") String dataDir) {
        BasicDataSource ds = new BasicDataSource();
        ds.setDriverClassName("org.h2.Driver");
        ds.setUrl("jdbc:h2:file:" + Path.of(dataDir, "hapi").toString() + ";DB_CLOSE_ON_EXIT=FALSE");
        ds.setUsername("sa");
        ds.setPassword("");
        ds.setMaxTotal(20);
        ds.setMaxWait(java.time.Duration.ofSeconds(30));
        return ds;
    }

    @Primary
    @Bean
    public LocalContainerEntityManagerFactoryBean entityManagerFactory(
            ConfigurableListableBeanFactory beanFactory,
            FhirContext fhirContext,
            JpaStorageSettings storageSettings,
            DataSource dataSource) {
        LocalContainerEntityManagerFactoryBean factory =
                HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
        Map<String, Object> props = new HashMap<>();
        props.put("hibernate.dialect", "ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect");
        props.put("hibernate.hbm2ddl.auto", "update");
        props.put("hibernate.archive.scanner", "org.hibernate.boot.archive.scan.internal.DisabledScanner");
        props.put(
                "hibernate.implicit_naming_strategy",
                "org.springframework.boot.orm.jpa.hibernate.SpringImplicitNamingStrategy");
        props.put(
                "hibernate.physical_naming_strategy",
                "org.hibernate.boot.model.naming.CamelCaseToUnderscoresNamingStrategy");
        props.put("hibernate.format_sql", "false");
        props.put("hibernate.show_sql", "false");
        props.put("hibernate.jdbc.batch_size", "20");
        props.put("hibernate.cache.use_query_cache", "false");
        props.put("hibernate.cache.use_second_level_cache", "false");
        props.put("hibernate.cache.use_structured_entries", "false");
        props.put("hibernate.cache.use_minimal_puts", "false");
        props.put("hibernate.search.enabled", "false");
        factory.setPersistenceUnitName("HAPI_PU");
        factory.setJpaPropertyMap(props);
        factory.setDataSource(dataSource);
        return factory;
    }

    @Primary
    @Bean
    public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
        JpaTransactionManager manager = new JpaTransactionManager();
        manager.setEntityManagerFactory(entityManagerFactory);
        return manager;
    }

    @Bean
    public IFulltextSearchSvc fullTextSearchSvc() {
        return new FulltextSearchSvcImpl();
    }

    @Bean
    public IHSearchSortHelper hSearchSortHelper(ISearchParamRegistry searchParamRegistry) {
        return new HSearchSortHelperImpl(searchParamRegistry);
    }

    @Bean
    public IStaleSearchDeletingSvc staleSearchDeletingSvc() {
        return new StaleSearchDeletingSvcImpl();
    }

    @Bean
    public DatabaseBackedPagingProvider databaseBackedPagingProvider() {
        DatabaseBackedPagingProvider paging = new DatabaseBackedPagingProvider();
        paging.setDefaultPageSize(20);
        paging.setMaximumPageSize(500);
        return paging;
    }

    @Bean
    public IResourceSupportedSvc resourceSupportedSvc(IDaoRegistry daoRegistry) {
        return new DaoRegistryResourceSupportedSvc(daoRegistry);
    }

    @Bean(name = "myResourceCountsCache")
    public ResourceCountCache resourceCountsCache(IFhirSystemDao<?, ?> systemDao) {
        return ResourceCountCacheUtil.newResourceCountCache(systemDao);
    }

    /**
     * Batch2 maintenance (which advances {@code $export} jobs) runs every minute by default; a
     * sandbox wants answers in seconds.
     */
    @Bean
    public static BeanPostProcessor batchMaintenanceFrequency() {
        return new BeanPostProcessor() {
            @Override
            public Object postProcessBeforeInitialization(Object bean, String beanName) {
                if (bean instanceof JobMaintenanceServiceImpl maintenance) {
                    maintenance.setScheduledJobFrequencyMillis(BATCH_MAINTENANCE_MILLIS);
                }
                return bean;
            }
        };
    }

    /** Subscription delivery wants an e-mail sender even when only REST-hooks are enabled. */
    @Bean
    public IEmailSender emailSender() {
        return details -> {};
    }
}
