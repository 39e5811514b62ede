// Cosmos DB for NoSQL, serverless, keys disabled (data-plane RBAC only).
// The database and containers are declared here because an Entra ID token cannot create them through
// the data plane: the app's ensureSchema() only reads them when they exist. Keep `containers` in step
// with CONTAINERS in shared/adapters/cosmos.ts (test/unit/infra/bicep.test.ts checks it).
param location string
param tags object
param accountName string
param databaseName string

var containers = [
  { name: 'rotations', partitionKey: '/credentialId' }
  { name: 'deadLetters', partitionKey: '/source' }
  { name: 'signingKeys', partitionKey: '/issuer' }
  // Renew's Idempotency-Key answers: TTL on, each document carries its own `ttl`.
  { name: 'idempotencyKeys', partitionKey: '/id', defaultTtl: -1 }
  { name: 'tenants', partitionKey: '/tenantId' }
  { name: 'tenantJobs', partitionKey: '/tenantId' }
  { name: 'keyPolicies', partitionKey: '/kind' }
  // Tenant keys (BYOK): one create-only claim per customer key.
  { name: 'tenantKeyClaims', partitionKey: '/id' }
  // Incidents: the incident, its create-only entries and its run, each in the incident's partition.
  { name: 'incidents', partitionKey: '/incidentId' }
  { name: 'incidentEntries', partitionKey: '/incidentId' }
  { name: 'incidentJobs', partitionKey: '/incidentId' }
  // Tenant keys part 2: backup records, restore jobs, export jobs (TTL on: each export carries its own `ttl`).
  { name: 'tenantBackups', partitionKey: '/tenantId' }
  { name: 'tenantRestores', partitionKey: '/tenantId' }
  { name: 'tenantExports', partitionKey: '/tenantId', defaultTtl: -1 }
  // Encryption key sets and batch jobs (issue 13)
  { name: 'keySets', partitionKey: '/setId' }
  { name: 'keySetItems', partitionKey: '/setId' }
  { name: 'batchJobs', partitionKey: '/id' }
]

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    capabilities: [
      {
        name: 'EnableServerless'
      }
    ]
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    disableLocalAuth: true
    // Keys are off anyway; this also blocks metadata writes (schema changes) by key.
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

// Serverless: no throughput options.
resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [
  for c in containers: {
    parent: database
    name: c.name
    properties: {
      resource: union(
        {
          id: c.name
          partitionKey: {
            paths: [
              c.partitionKey
            ]
            kind: 'Hash'
          }
        },
        contains(c, 'defaultTtl') ? { defaultTtl: c.defaultTtl } : {}
      )
    }
  }
]

output name string = account.name
output endpoint string = account.properties.documentEndpoint
