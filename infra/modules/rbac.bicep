// Every grant Keyturn needs, each scoped to the one resource it is about (never the resource group).
// Role ids are checked against their names by test/unit/infra/bicep.test.ts.
@description('Principal (object) id of Keyturn\'s user-assigned identity.')
param principalId string
param keyVaultName string
param storageAccountName string
param deadLetterContainerName string
param cosmosAccountName string
param notificationTopicName string
param appInsightsName string
@description('Principal id of the Key Vault system topic\'s system-assigned identity (writes dead letters).')
param systemTopicPrincipalId string

// Built-in role definition ids.
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer
var keyVaultCryptoOfficerRoleId = '14b46e9e-c2b7-41b4-b07b-48a6ebf60603' // Key Vault Crypto Officer
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
var rbacAdministratorRoleId = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168' // Role Based Access Control Administrator
var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
var eventGridDataSenderRoleId = 'd5a91429-5739-47e2-a06b-3470a27159e7' // EventGrid Data Sender
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
// The Key Vault data-plane roles: the only ones Keyturn may assign or remove on its vault (ABAC condition below).
var keyVaultAdministratorRoleId = '00482a5a-887f-4fb3-b363-3b7fe8e74483' // Key Vault Administrator
var keyVaultCryptoUserRoleId = '12338af0-0e69-4776-bea7-57ae8d297424' // Key Vault Crypto User
var keyVaultCryptoServiceEncryptionUserRoleId = 'e147488a-f6f5-4113-8e2d-b22465e65bf6' // Key Vault Crypto Service Encryption User
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
var keyVaultReaderRoleId = '21090545-7ca7-4776-b22c-e363652d74d2' // Key Vault Reader
var keyVaultDataRoleIds = [
  keyVaultAdministratorRoleId
  keyVaultCryptoOfficerRoleId
  keyVaultCryptoUserRoleId
  keyVaultCryptoServiceEncryptionUserRoleId
  keyVaultSecretsOfficerRoleId
  keyVaultSecretsUserRoleId
  keyVaultReaderRoleId
]
var keyVaultDataRoles = join(keyVaultDataRoleIds, ', ')
// Condition language 2.0: writes may only create, and deletes only remove, assignments of those roles
// (never Owner, User Access Administrator or this role itself). The local emulator enforces the same text.
var onlyKeyVaultDataRolesCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${keyVaultDataRoles}})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${keyVaultDataRoles}}))'
// Cosmos DB data plane (not an ARM role): Cosmos DB Built-in Data Contributor.
var cosmosDataContributorRoleId = '00000000-0000-0000-0000-000000000002' // Cosmos DB Built-in Data Contributor

resource keyVault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource deadLetters 'containers' existing = {
      name: deadLetterContainerName
    }
  }
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

resource notificationTopic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: notificationTopicName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Renewal writes new secret versions (staged sibling secrets too), reads, tags and disables old ones.
resource keyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, keyVaultSecretsOfficerRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Signing-key rollover and tenant-key rekey create keys and versions, sign, wrap/unwrap, back up and
// disable them. Crypto User can sign and update but not create keys or versions, so Officer is the least
// built-in role that works.
resource keyVaultCryptoOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, keyVaultCryptoOfficerRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoOfficerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Incident verify lists soft-deleted checkpoint secrets (their tags and dates, never values): reading deleted
// objects is `vaults/deletedSecrets/read`, outside `secrets/*`; Reader's `vaults/*/read` covers it.
resource keyVaultReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, keyVaultReaderRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultReaderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Removing a principal's access to Keyturn's vault (tenant-key revoke, breach playbooks) through ARM role
// assignments, limited by the ABAC condition to the Key Vault data roles: Keyturn cannot grant itself
// or anyone Owner or User Access Administrator, nor remove such grants.
resource keyVaultRbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, rbacAdministratorRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', rbacAdministratorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Keyturn may assign and remove only the Key Vault data roles on its vault'
    condition: onlyKeyVaultDataRolesCondition
    conditionVersion: '2.0'
  }
}

// The Functions host (identity-based AzureWebJobsStorage: leases, host keys), the Flex deployment
// package and Keyturn's backups/exports. The host needs Owner-level blob rights (docs: host storage with identity).
resource storageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwnerRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Job queues (KEYTURN_QUEUE__queueServiceUri): the app enqueues long jobs, the queue triggers dequeue,
// renew, delete and move poison messages. Scoped to the account (queues are created on first use).
resource storageQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageQueueDataContributorRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Publishing notifications to Keyturn's own topic (local auth is off, so no SAS key exists).
resource eventGridDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(notificationTopic.id, principalId, eventGridDataSenderRoleId)
  scope: notificationTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSenderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Entra ID telemetry ingestion (App Insights local auth is off).
resource monitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Event Grid writes undeliverable Key Vault events into the dead-letter container, and nowhere else.
resource deadLetterBlobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::deadLetters.id, systemTopicPrincipalId, storageBlobDataContributorRoleId)
  scope: storage::blobService::deadLetters
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
    principalId: systemTopicPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// State, incidents and signing-key records: read/write items in the account's (only) database.
// Data-plane RBAC cannot create databases/containers; cosmos.bicep declares them.
resource cosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmos
  name: guid(cosmosDataContributorRoleId, principalId, cosmos.id)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributorRoleId}'
    principalId: principalId
    scope: cosmos.id
  }
}
