/**
 * Issues JWTs signed by the current key through Key Vault: the app assembles
 * `base64url(header).base64url(payload)`, the vault signs its digest, and the private
 * key never leaves the vault. `iss` comes from the settings, `iat`/`exp` from the Clock.
 */
import { randomUUID } from 'node:crypto';
import { base64url } from 'jose';
import { signingKey } from '../../domain/signingKeys';
import type { TokenRequest } from '../../domain/tokenClaims';
import { KeyturnError } from '../../errors';
import type { Clock } from '../../ports';
import type { SigningKeyStore } from './ports';
import type { SigningKeyService } from './signingKeys';

export interface IssuedToken {
  token: string;
  kid: string;
  alg: string;
  issuedAt: string;
  expiresAt: string;
}

const encoder = new TextEncoder();
const segment = (value: object): string => base64url.encode(encoder.encode(JSON.stringify(value)));

export class TokenIssuer {
  constructor(
    private readonly deps: { signingKeys: SigningKeyService; keys: SigningKeyStore; clock: Clock; issuer: string },
  ) {}

  async issue(request: TokenRequest): Promise<IssuedToken> {
    const { set } = await this.deps.signingKeys.ensureKeySet();
    const key = signingKey(set);
    if (!key) throw new KeyturnError('DEPENDENCY_FAILED', 'There is no signing key; the rollover timer creates one');
    const iat = Math.floor((await this.deps.clock.now()).getTime() / 1000);
    const exp = iat + request.expiresInSeconds;
    const header = { alg: key.alg, kid: key.kid, typ: 'JWT' };
    const payload = { iss: this.deps.issuer, jti: randomUUID(), ...request.claims, iat, exp };
    const signingInput = `${segment(header)}.${segment(payload)}`;
    const signature = await this.deps.keys.sign(key.vaultKey, key.alg, encoder.encode(signingInput));
    return {
      token: `${signingInput}.${base64url.encode(signature)}`,
      kid: key.kid,
      alg: key.alg,
      issuedAt: new Date(iat * 1000).toISOString(),
      expiresAt: new Date(exp * 1000).toISOString(),
    };
  }
}
