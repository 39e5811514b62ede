/**
 * The scopes the local ARM endpoint knows: the subscription, its one resource group,
 * the emulated vaults, and one key or secret in a vault. Anything else gets ARM's
 * 400/404 shapes, so a typo in a scope fails as it would in Azure.
 */
import { ArmError } from './errors';

export interface ArmTopology {
  subscriptionId: string;
  resourceGroup: string;
  /** Vault names (case-insensitive, as ARM names are). */
  vaults: string[];
}

/** The canonical spelling of a scope (known segments in ARM's casing, no trailing slash). */
export function parseScope(raw: string, topo: ArmTopology): string {
  const segs = raw.split('/').filter((s) => s !== '');
  const [subs, sub, rgs, rg, providers, ns, vaults, vault, kind, name, ...more] = segs;
  if ((subs ?? '').toLowerCase() !== 'subscriptions' || !sub) {
    throw new ArmError(400, 'MissingSubscription', 'The request did not have a subscription or a valid tenant level resource provider.');
  }
  if (sub.toLowerCase() !== topo.subscriptionId) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
  const subscription = `/subscriptions/${topo.subscriptionId}`;
  if (segs.length === 2) return subscription;
  if ((rgs ?? '').toLowerCase() !== 'resourcegroups' || !rg) throw invalidScope(raw);
  if (rg.toLowerCase() !== topo.resourceGroup.toLowerCase()) throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${rg}' could not be found.`);
  const group = `${subscription}/resourceGroups/${topo.resourceGroup}`;
  if (segs.length === 4) return group;
  if ((providers ?? '').toLowerCase() !== 'providers' || (ns ?? '').toLowerCase() !== 'microsoft.keyvault' || (vaults ?? '').toLowerCase() !== 'vaults' || !vault) {
    throw invalidScope(raw);
  }
  const known = topo.vaults.find((v) => v.toLowerCase() === vault.toLowerCase());
  if (!known) {
    throw new ArmError(
      404,
      'ResourceNotFound',
      `The Resource 'Microsoft.KeyVault/vaults/${vault}' under resource group '${topo.resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
    );
  }
  const vaultScope = `${group}/providers/Microsoft.KeyVault/vaults/${known}`;
  if (segs.length === 8) return vaultScope;
  const k = (kind ?? '').toLowerCase();
  if ((k !== 'keys' && k !== 'secrets') || !name || more.length > 0 || !/^[0-9a-zA-Z-]{1,127}$/.test(name)) throw invalidScope(raw);
  // Object names are case-insensitive in Key Vault; the vault compares them lower-cased.
  return `${vaultScope}/${k}/${name.toLowerCase()}`;
}

function invalidScope(raw: string): ArmError {
  return new ArmError(400, 'InvalidResourceType', `The scope '${raw}' is not a valid scope for role assignments here (subscription, resource group, Key Vault vault, or a vault's key or secret).`);
}
