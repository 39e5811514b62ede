// Keyturn: Azure infrastructure (resource-group scope).
// Deploy: az deployment group create -g <rg> -f infra/main.bicep -p infra/main.parameters.json
// After the code is published, deploy again with deployEventSubscriptions=true (see infra/README.md):
// an AzureFunction Event Grid destination fails validation until the function exists (Azure/bicep#11656).
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('Name of the environment (e.g. dev, prod); feeds resource names and the azd-env-name tag.')
param environmentName string

@description('Region for all resources. Must be a region that offers Flex Consumption.')
param location string = resourceGroup().location

@description('Create the Key Vault → keyVaultEvents subscription. Leave false until the function code is deployed.')
param deployEventSubscriptions bool = false

@description('Name of the Event Grid-triggered function that handles Key Vault events (app.eventGrid name).')
param eventGridFunctionName string = 'keyVaultEvents'

@description('Stable key of the vault in KEYTURN_VAULTS (never the URL).')
@minLength(1)
@maxLength(127)
param vaultKey string = 'primary'

@description('More vaults for KEYTURN_VAULTS, as name=https://<vault>.vault.azure.net entries (comma separated). Their owners grant the roles.')
param additionalVaults string = ''

@description('Key Vault SKU; premium is needed only for HSM-backed keys.')
@allowed([
  'standard'
  'premium'
])
param keyVaultSku string = 'standard'

@description('Cosmos DB database name (KEYTURN_COSMOS_DATABASE).')
param cosmosDatabaseName string = 'keyturn'

@description('Token issuer; empty = https://<function app default host name>. Set it when a custom domain fronts the app.')
param issuer string = ''

@description('NCRONTAB (six fields) for the renewal sweep.')
param sweepSchedule string = '0 0 * * * *'

@description('NCRONTAB (six fields) for resuming interrupted rotations.')
param resumeSchedule string = '0 * * * * *'

@description('NCRONTAB (six fields) for the signing-key rollover check.')
param signingRolloverSchedule string = '0 0 * * * *'

@description('NCRONTAB (six fields) for the BYOK tenant-key access probes.')
param tenantProbeSchedule string = '0 */5 * * * *'

@description('BYOK self-unassign: vaultName=/subscriptions/.../vaults/{name},... (same Entra tenant; the customer grants Role Based Access Control Administrator on the key). Empty = off.')
param byokSelfUnassign string = ''

@description('Cross-tenant BYOK: client id of the multi-tenant app registration whose federated credential is the managed identity. Empty = none.')
param crossTenantClientId string = ''

@description('Tenant keys: rekey a service-managed tenant whose key in use is older than this many days (at least 1; BYOK tenants get RekeyNeeded). Empty = off.')
param tenantRekeyAfterDays string = ''
@description('NCRONTAB (six fields) for the daily verification of every incident record.')
param incidentVerifySchedule string = '0 0 3 * * *'

@description('Flex Consumption: maximum instances.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Flex Consumption: instance memory (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Tags applied to every resource.')
param tags object = {}

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, { 'azd-env-name': environmentName })

var names = {
  identity: '${abbrs.managedIdentityUserAssignedIdentities}keyturn-${resourceToken}'
  logAnalytics: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
  appInsights: '${abbrs.insightsComponents}${resourceToken}'
  storage: '${abbrs.storageStorageAccounts}${resourceToken}'
  cosmos: '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
  keyVault: '${abbrs.keyVaultVaults}${resourceToken}'
  notificationTopic: '${abbrs.eventGridDomainsTopics}keyturn-${resourceToken}'
  systemTopic: '${abbrs.eventGridSystemTopics}kv-${resourceToken}'
  plan: '${abbrs.webServerFarms}${resourceToken}'
  functionApp: '${abbrs.webSitesFunctions}keyturn-${resourceToken}'
}

// Blob containers: the Flex deployment package and Event Grid dead letters. The app creates its own
// backup/export containers at run time (Storage Blob Data Owner allows that).
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletters'

// One user-assigned identity for the host and the app: DefaultAzureCredential finds it through AZURE_CLIENT_ID.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: allTags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: allTags
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: allTags
    name: names.storage
    containerNames: [
      deploymentContainerName
      deadLetterContainerName
      // Tenant keys part 2: Key Vault backups, escrow copies, export packages.
      'tenant-backups'
      'tenant-escrow'
      'tenant-exports'
      // Key-set exports (keyset-exports/{set}/{timestamp}); blob soft delete keeps them 14 days after a delete.
      'keyset-exports'
    ]
    // The batch jobs' queue (KEYTURN_BATCH_QUEUE in functionApp.bicep) and its poison queue.
    queueNames: [
      'keyturn-batch-jobs'
      'keyturn-batch-jobs-poison'
    ]
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    location: location
    tags: allTags
    accountName: names.cosmos
    databaseName: cosmosDatabaseName
  }
}

module keyVault 'modules/keyVault.bicep' = {
  name: 'keyVault'
  params: {
    location: location
    tags: allTags
    name: names.keyVault
    skuName: keyVaultSku
  }
}

module eventGrid 'modules/eventGrid.bicep' = {
  name: 'eventGrid'
  params: {
    location: location
    tags: allTags
    notificationTopicName: names.notificationTopic
    systemTopicName: names.systemTopic
    keyVaultId: keyVault.outputs.id
  }
}

module functionApp 'modules/functionApp.bicep' = {
  name: 'functionApp'
  params: {
    location: location
    tags: allTags
    planName: names.plan
    name: names.functionApp
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    vaults: join(filter(concat([ '${vaultKey}=${keyVault.outputs.uri}' ], split(additionalVaults, ',')), v => !empty(trim(v))), ',')
    signingVault: vaultKey
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmosDatabaseName
    notificationTopicEndpoint: eventGrid.outputs.notificationTopicEndpoint
    issuer: issuer
    sweepSchedule: sweepSchedule
    resumeSchedule: resumeSchedule
    signingRolloverSchedule: signingRolloverSchedule
    tenantProbeSchedule: tenantProbeSchedule
    identityPrincipalId: identity.properties.principalId
    byokSelfUnassign: byokSelfUnassign
    crossTenantClientId: crossTenantClientId
    tenantRekeyAfterDays: tenantRekeyAfterDays
    incidentVerifySchedule: incidentVerifySchedule
    playbookVaultScopes: '${vaultKey}=${keyVault.outputs.id}'
  }
}

// All least-privilege grants in one place, each scoped to the single resource it is about.
module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    principalId: identity.properties.principalId
    keyVaultName: keyVault.outputs.name
    storageAccountName: storage.outputs.name
    deadLetterContainerName: deadLetterContainerName
    cosmosAccountName: cosmos.outputs.name
    notificationTopicName: eventGrid.outputs.notificationTopicName
    appInsightsName: monitoring.outputs.appInsightsName
    systemTopicPrincipalId: eventGrid.outputs.systemTopicPrincipalId
  }
}

// Post-deploy step: only once the keyVaultEvents function exists in the app.
module eventSubscriptions 'eventSubscriptions.bicep' = if (deployEventSubscriptions) {
  name: 'eventSubscriptions'
  dependsOn: [
    rbac
  ]
  params: {
    systemTopicName: eventGrid.outputs.systemTopicName
    functionAppName: functionApp.outputs.name
    functionName: eventGridFunctionName
    storageAccountName: storage.outputs.name
    deadLetterContainerName: deadLetterContainerName
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_CLIENT_ID string = identity.properties.clientId
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URI string = keyVault.outputs.uri
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output EVENTGRID_TOPIC_ENDPOINT string = eventGrid.outputs.notificationTopicEndpoint
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.systemTopicName
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
