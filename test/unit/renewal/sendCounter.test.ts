/**
 * The Key Vault clients' send counter on its own: it counts every pass of a marked
 * request (each one is a send on the wire, being the pipeline's last policy), keeps the
 * marker off the wire, and leaves unmarked requests and unknown markers alone.
 */
import { createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { CALL_MARKER_HEADER, sendCounter, withSendCount } from '../../../shared/adapters/keyVault/clients';

const request = (headers: Record<string, string> = {}) => createPipelineRequest({ url: 'https://v.vault.azure.net/secrets/s', method: 'PUT', headers: createHttpHeaders(headers) });

describe('send counter', () => {
  test('each pass of a marked request counts; the marker never reaches the wire and is back for a retry', async () => {
    const policy = sendCounter();
    const onWire: (string | undefined)[] = [];
    const wire = async (r: unknown) => (onWire.push((r as ReturnType<typeof request>).headers.get(CALL_MARKER_HEADER)), { status: 200 });
    const counted = await withSendCount(async (headers) => {
      const r = request(headers);
      await policy.sendRequest(r, wire); // the first attempt
      await policy.sendRequest(r, wire); // the retry policy sends the same request again
      expect(r.headers.get(CALL_MARKER_HEADER)).toBe(headers[CALL_MARKER_HEADER]);
      return 'answer';
    });
    expect(counted).toEqual({ result: 'answer', sends: 2 });
    expect(onWire).toEqual([undefined, undefined]);
  });

  test('a call none of whose requests passed a counter: sends unknown; unmarked requests are passed on as they are', async () => {
    await expect(withSendCount(async () => 'answer')).resolves.toEqual({ result: 'answer' });
    const r = request({ other: 'x' });
    await sendCounter().sendRequest(r, async () => ({ status: 200 }));
    expect(r.headers.get('other')).toBe('x');
  });

  test('a marker of a call that already ended is not counted into a later one', async () => {
    let stale: Record<string, string> = {};
    await withSendCount(async (headers) => void (stale = headers));
    const later = await withSendCount(async () => {
      await sendCounter().sendRequest(request(stale), async () => ({ status: 200 }));
      return 1;
    });
    expect(later).toEqual({ result: 1 });
  });
});
