/**
 * Issues JWTs signed by the current key through Key Vault: the app assembles
 * `base64url(header).base64url(payload)`, the vault signs its digest, and the private
 * key never leaves the vault. `iss` comes from the settings, `iat`/`exp` from the Clock.
 */
import { randomUUID } from 'node:crypto';
import { base64url } from 'jose';
import { type KeySet, type SigningKey, signingKey } from '../../domain/signingKeys';
import type { TokenRequest } from '../../domain/tokenClaims';
import { KeyturnError } from '../../errors';
import type { Clock, Logger } from '../../ports';
import type { SigningVault } from './signingVault';
import { type SigningKeyService, logText } from './signingKeys';

export interface IssuedToken {
  token: string;
  kid: string;
  alg: string;
  issuedAt: string;
  expiresAt: string;
}

const encoder = new TextEncoder();
/** The first signature, and one more if the key stopped being current meanwhile. */
const SIGN_ATTEMPTS = 2;
const segment = (value: object): string => base64url.encode(encoder.encode(JSON.stringify(value)));

export class TokenIssuer {
  constructor(
    private readonly deps: { signingKeys: SigningKeyService; keys: SigningVault; clock: Clock; issuer: string; log: Logger },
  ) {}

  /**
   * Signs with the current key, then re-reads the key set (a point read): if the key
   * stopped being current meanwhile (an emergency rollover, perhaps of a compromised
   * key), the token is dropped and signed once more with the new current key.
   */
  async issue(request: TokenRequest): Promise<IssuedToken> {
    const { signingKeys, log } = this.deps;
    let set: KeySet | undefined = (await signingKeys.signingKeySet()).set;
    for (let attempt = 1; attempt <= SIGN_ATTEMPTS; attempt++) {
      const key = signingKey(set);
      if (!key) break;
      let issued: IssuedToken | undefined;
      try {
        issued = await this.signWith(key, request);
      } catch (e) {
        // A key disabled by an emergency rollover refuses to sign: retry only if it stopped being current.
        set = (await signingKeys.read())?.set;
        if (signingKey(set)?.kid === key.kid) {
          log.error('Signing a token failed', { kid: key.kid, error: logText(e) });
          throw e;
        }
      }
      if (issued) {
        set = (await signingKeys.read())?.set;
        if (signingKey(set)?.kid === key.kid) return issued;
      }
      log.warn('The signing key changed while a token was being signed; the token is dropped', {
        kid: key.kid,
        nowSigning: signingKey(set)?.kid,
        attempt,
      });
    }
    throw new KeyturnError('CONFLICT', 'The signing key changed while the token was being signed; try again');
  }

  private async signWith(key: SigningKey, request: TokenRequest): Promise<IssuedToken> {
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
