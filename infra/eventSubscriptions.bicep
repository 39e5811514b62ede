// Post-deploy: subscribe keyVaultEvents to the vault's system topic. Deploy it only after the code is
// published — an AzureFunction destination is validated at deploy time and fails with "Destination
// endpoint not found" until the function exists (Azure/bicep#11656). Used by main.bicep behind
// deployEventSubscriptions, or on its own:
//   az deployment group create -g <rg> -f infra/eventSubscriptions.bicep \
//     -p systemTopicName=<EVENTGRID_SYSTEM_TOPIC_NAME> functionAppName=<FUNCTION_APP_NAME> storageAccountName=<STORAGE_ACCOUNT_NAME>
targetScope = 'resourceGroup'

param systemTopicName string
param functionAppName string
param functionName string = 'keyVaultEvents'
param storageAccountName string
param deadLetterContainerName string = 'eventgrid-deadletters'

@description('Delivery attempts before an event is dead-lettered (Event Grid default 30).')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes an event is retried before it is dead-lettered (Event Grid default 1440).')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

// Only what the app handles: near-expiry and expiry of secrets and keys. NewVersionCreated would echo
// Keyturn's own writes back to it; certificates are not managed.
var includedEventTypes = [
  'Microsoft.KeyVault.SecretNearExpiry'
  'Microsoft.KeyVault.SecretExpired'
  'Microsoft.KeyVault.KeyNearExpiry'
  'Microsoft.KeyVault.KeyExpired'
]

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource keyVaultEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: systemTopic
  name: 'keyturn-${functionName}'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/${functionName}'
        // The v4 eventGrid trigger handles one event per invocation.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: includedEventTypes
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // Shared keys are off on the account, so Event Grid writes dead letters with the system topic's
    // identity (Storage Blob Data Contributor on this one container, granted in modules/rbac.bicep).
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output name string = keyVaultEvents.name
