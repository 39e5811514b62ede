/**
 * Who asked for an emergency rollover: the App Service authentication header only when
 * KEYTURN_TRUST_EASY_AUTH_HEADER says it is set by the platform (verified), else the
 * body's self-declared name (unverified). Both are bounded printable text.
 */
import { requesterSchema } from '../../../shared/domain/signingKeys';
import { ValidationError } from '../../../shared/errors';
import { resolveRequester } from '../../../shared/http/requester';
import { signingWorld } from './fakes';

const request = { reason: 'drill', compromised: false };

/** What the emergency function does: the requester is resolved at the HTTP edge, then the service rolls. */
function emergencyAs(
  world: ReturnType<typeof signingWorld>,
  body: { reason: string; compromised: boolean; requestedBy?: string; principalName?: string | null },
) {
  const { requestedBy, principalName, ...rest } = body;
  return Promise.resolve()
    .then(() => resolveRequester({ requestedBy, principalName }, { trustEasyAuthHeader: world.trustEasyAuthHeader }))
    .then((requester) => world.service.emergency({ ...rest, ...requester }));
}

describe('the requester of an emergency rollover', () => {
  test('When the header is not trusted (the default), then a spoofed principal header is ignored and the body name is recorded as unverified', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    const { record } = await emergencyAs(world, { ...request, requestedBy: 'bob', principalName: 'admin@contoso.example' });
    expect(record).toMatchObject({ requestedBy: 'bob', requestedByVerified: false });
    const stored = world.sets.records.find((r) => r.id === record!.id);
    expect(stored).toMatchObject({ requestedBy: 'bob', requestedByVerified: false });
  });

  test('When nobody is named and the header is not trusted, then the record says unknown, unverified', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    const { record } = await emergencyAs(world, { ...request, principalName: 'admin@contoso.example' });
    expect(record).toMatchObject({ requestedBy: 'unknown', requestedByVerified: false });
  });

  test('When the header is trusted and present, then it wins over the body and is recorded as verified', async () => {
    const world = signingWorld({ trustEasyAuthHeader: true, keyType: 'EC-P256' });
    await world.service.runSchedule();
    const { record } = await emergencyAs(world, { ...request, requestedBy: 'bob', principalName: '  alice@contoso.example ' });
    expect(record).toMatchObject({ requestedBy: 'alice@contoso.example', requestedByVerified: true });
  });

  test('When the header is trusted but absent, then the body name is used, unverified', async () => {
    const world = signingWorld({ trustEasyAuthHeader: true, keyType: 'EC-P256' });
    await world.service.runSchedule();
    const { record } = await emergencyAs(world, { ...request, requestedBy: 'bob', principalName: null });
    expect(record).toMatchObject({ requestedBy: 'bob', requestedByVerified: false });
  });

  test.each([
    ['empty', '   '],
    ['too long', 'a'.repeat(201)],
    ['with a control character', 'alice\u0007'],
    ['with a new line', 'alice\nforged log line'],
    ['with a right-to-left override', 'alice\u202Eelgoog'],
  ])('When the trusted header is %s, then the request is a 400 naming the header and nothing changes', async (_what, value) => {
    const world = signingWorld({ trustEasyAuthHeader: true, keyType: 'EC-P256' });
    await world.service.runSchedule();
    const writes = world.sets.writes;
    const error = await emergencyAs(world, { ...request, principalName: value }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'x-ms-client-principal-name' });
    expect(world.sets.writes).toBe(writes);
  });

  test('When a self-declared name is not printable text, then the request is a 400 naming requestedBy', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    await expect(emergencyAs(world, { ...request, requestedBy: 'eve\u0000' })).rejects.toMatchObject({ field: 'requestedBy' });
  });

  test('When Keyturn rolls on its own, then the record names keyturn as a verified requester', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    expect(world.sets.records[0]).toMatchObject({ trigger: 'bootstrap', requestedBy: 'keyturn', requestedByVerified: true });
  });

  test('The requester schema trims and accepts 1-200 printable characters, including non-Latin names', () => {
    expect(requesterSchema.parse('  José Müller <jose@contoso.example> ')).toBe('José Müller <jose@contoso.example>');
    expect(requesterSchema.parse('山田太郎')).toBe('山田太郎');
    expect(requesterSchema.safeParse('a'.repeat(200)).success).toBe(true);
    expect(requesterSchema.safeParse('a'.repeat(201)).success).toBe(false);
    expect(requesterSchema.safeParse('tab\there').success).toBe(false);
  });
});
