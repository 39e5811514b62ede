// Event Grid: Keyturn's notification custom topic (the app publishes with Entra ID, keys off) and the
// system topic on the vault. The vault → keyVaultEvents subscription is NOT here: it is created after
// the code is deployed (../eventSubscriptions.bicep).
param location string
param tags object
param notificationTopicName string
param systemTopicName string
param keyVaultId string

resource notificationTopic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: notificationTopicName
  location: location
  tags: tags
  properties: {
    // The app publishes with EventGridPublisherClient(endpoint, 'EventGrid', ...).
    inputSchema: 'EventGridSchema'
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

// System-assigned identity: used to write dead-lettered events to blob storage without keys.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: keyVaultId
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

output notificationTopicName string = notificationTopic.name
output notificationTopicEndpoint string = notificationTopic.properties.endpoint
output systemTopicName string = systemTopic.name
output systemTopicPrincipalId string = systemTopic.identity.principalId
