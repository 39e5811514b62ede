// Function App on Flex Consumption (FC1, Linux, Node 20) running as the user-assigned identity.
// No keys anywhere: host storage, deployment package, Cosmos, Event Grid and App Insights all use Entra ID.
param location string
param tags object
param planName string
param name string
param identityId string
param identityClientId string
param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string
param appInsightsConnectionString string
param maximumInstanceCount int
param instanceMemoryMB int

@description('KEYTURN_VAULTS value: key=https://<vault>.vault.azure.net entries.')
param vaults string
param signingVault string
param cosmosEndpoint string
param cosmosDatabaseName string
param notificationTopicEndpoint string
@description('Empty = https://<default host name>.')
param issuer string
param sweepSchedule string
param resumeSchedule string
param signingRolloverSchedule string
param tenantProbeSchedule string
@description('Object id of the managed identity (whose own role assignment a BYOK self-unassign removes).')
param identityPrincipalId string
@description('Tenant keys: customer vaults (same Entra tenant) where Keyturn removes its own assignment on a revoke; empty = off.')
param byokSelfUnassign string
@description('Cross-tenant BYOK: client id of the multi-tenant app registration (federated credential = the managed identity); empty = none.')
param crossTenantClientId string
param incidentVerifySchedule string
@description('Tenant-key export: hours a request waits for approval and its package can be fetched (the blob lifecycle rule deletes packages after two days).')
@minValue(1)
@maxValue(24)
param tenantExportExpiryHours int = 24
@description('Tenant keys: the timer rekeys a service-managed tenant whose key in use is older than this many days (BYOK: RekeyNeeded); empty = off.')
param tenantRekeyAfterDays string = ''
@description('Breach playbooks: vault alias=ARM resource id entries, where unauthorized-use lists and removes role assignments.')
param playbookVaultScopes string = ''
@description('Breach playbooks: principal ids no playbook removes (the app identity is always added), and the administrators.')
param protectedPrincipals string = ''
param adminPrincipals string = ''
@description('Breach playbooks: a plan changing more keys than this waits for a second approver.')
param playbookApprovalThreshold int = 20

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd deploys the code to the resource carrying this tag (service name in azure.yaml).
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Flex takes the runtime from here: FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION must not be set.
      runtime: {
        name: 'node'
        version: '20'
      }
    }
  }
}

var effectiveIssuer = empty(issuer) ? 'https://${functionApp.properties.defaultHostName}' : issuer

// A child resource (not siteConfig.appSettings) so the settings can use the site's own host name.
// It replaces the whole app-settings collection on every deployment: keep every setting here.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: {
    // Host storage through the identity, blob only: timers, leases and host keys need nothing else
    // (the queue triggers use their own connection, KEYTURN_QUEUE, below).
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: 'https://${storageAccountName}.blob.${environment().suffixes.storage}'
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // DefaultAzureCredential (Key Vault, Cosmos, Event Grid, Blob) picks the user-assigned identity from this.
    AZURE_CLIENT_ID: identityClientId

    KEYTURN_VAULTS: vaults
    KEYTURN_SIGNING_VAULT: signingVault
    // Identity shape (blob endpoint URL, no key). The app still calls BlobServiceClient.fromConnectionString,
    // which rejects it: see infra/README.md "App-side follow-ups".
    KEYTURN_STORAGE_CONNECTION: storageBlobEndpoint
    // No KEYTURN_COSMOS_KEY / KEYTURN_EVENTGRID_KEY: without them the app uses DefaultAzureCredential.
    KEYTURN_COSMOS_ENDPOINT: cosmosEndpoint
    KEYTURN_COSMOS_DATABASE: cosmosDatabaseName
    KEYTURN_EVENTGRID_ENDPOINT: notificationTopicEndpoint
    // The job queues: identity-based connection `KEYTURN_QUEUE` (queue triggers and the app's enqueue),
    // Storage Queue Data Contributor on the account (rbac.bicep).
    KEYTURN_QUEUE__queueServiceUri: 'https://${storageAccountName}.queue.${environment().suffixes.storage}'
    KEYTURN_QUEUE__credential: 'managedidentity'
    KEYTURN_QUEUE__clientId: identityClientId
    // Role assignments (RoleAssignments adapter) in this cloud's Resource Manager.
    KEYTURN_ARM_ENDPOINT: environment().resourceManager
    KEYTURN_ISSUER: effectiveIssuer
    KEYTURN_JWKS_URI: '${effectiveIssuer}/api/.well-known/jwks.json'
    // Timer functions read these as %SETTING%; the host resolves them before the app's defaults apply.
    KEYTURN_SWEEP_SCHEDULE: sweepSchedule
    KEYTURN_RESUME_SCHEDULE: resumeSchedule
    KEYTURN_SIGNING_ROLLOVER_SCHEDULE: signingRolloverSchedule
    // Tenant keys (BYOK): access probes, self-unassign on a revoke, the cross-tenant credential.
    KEYTURN_TENANT_PROBE_SCHEDULE: tenantProbeSchedule
    KEYTURN_TENANT_ACCESS_LOST_MINUTES: '10'
    KEYTURN_TENANT_REVOKE_VERIFY_HOURS: '72'
    KEYTURN_TENANT_REVOKED_RETENTION_DAYS: '90'
    KEYTURN_BYOK_SELF_UNASSIGN: byokSelfUnassign
    KEYTURN_APP_PRINCIPAL_ID: identityPrincipalId
    KEYTURN_CROSS_TENANT_CLIENT_ID: crossTenantClientId
    KEYTURN_HOME_TENANT_ID: subscription().tenantId
    // Incidents: the daily verification; checkpoints (secret versions incident-{id}-head) go to the first vault
    // (Key Vault Secrets Officer, rbac.bicep; purge protection keeps deleted versions, keyVault.bicep).
    KEYTURN_INCIDENT_VERIFY_SCHEDULE: incidentVerifySchedule
    KEYTURN_INCIDENT_CHECKPOINT_EVERY: '10'
    // Breach playbooks (issue 15): the vaults' ARM ids for unauthorized-use, never-removed principals, the two-person threshold.
    KEYTURN_PLAYBOOKS_ENABLED: 'true'
    KEYTURN_PLAYBOOK_VAULT_SCOPES: playbookVaultScopes
    KEYTURN_PROTECTED_PRINCIPALS: protectedPrincipals
    KEYTURN_ADMIN_PRINCIPALS: adminPrincipals
    KEYTURN_PLAYBOOK_APPROVAL_THRESHOLD: string(playbookApprovalThreshold)
    // Tenant keys part 2: export packages expire (the storage lifecycle rule removes them after two days).
    KEYTURN_TENANT_EXPORT_EXPIRY_HOURS: string(tenantExportExpiryHours)
    // Tenant keys: the optional rekey-after-days policy (the probe timer applies it).
    KEYTURN_TENANT_REKEY_AFTER_DAYS: tenantRekeyAfterDays
    // Encryption key sets (issue 13): the batch jobs' queue (the queue trigger reads %KEYTURN_BATCH_QUEUE%);
    // KEKs are created in the first vault, with the Crypto Officer role the app already holds there.
    KEYTURN_BATCH_QUEUE: 'keyturn-batch-jobs'
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
