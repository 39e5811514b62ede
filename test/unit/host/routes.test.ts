import { comparePrecedence, matchTemplate, parseRouteTemplate, RouteTable, splitPath } from '../../../local/host/routes';

function match(template: string, path: string): Record<string, string | undefined> | null {
  return matchTemplate(parseRouteTemplate(template), splitPath(path));
}

describe('route templates', () => {
  it('matches literals case-insensitively and allows a trailing slash', () => {
    expect(match('Orders/Open', 'orders/OPEN')).toEqual({});
    expect(match('orders/open', 'orders/open/')).toEqual({});
    expect(match('orders/open', 'orders/closed')).toBeNull();
    expect(match('orders', 'orders/open')).toBeNull();
  });

  it('binds parameters and keeps their original case, decoded', () => {
    expect(match('items/{id}', 'ITEMS/AbC%20d')).toEqual({ id: 'AbC d' });
    expect(match('items/{id}', 'items')).toBeNull();
  });

  it('supports optional parameters and defaults', () => {
    expect(match('echo/{id?}', 'echo')).toEqual({ id: undefined });
    expect(match('echo/{id?}', 'echo/7')).toEqual({ id: '7' });
    expect(match('greet/{who=world}', 'greet')).toEqual({ who: 'world' });
    expect(match('greet/{who=world}', 'greet/ann')).toEqual({ who: 'ann' });
  });

  it('supports catch-all parameters', () => {
    expect(match('files/{*rest}', 'files/a/b/c.txt')).toEqual({ rest: 'a/b/c.txt' });
    expect(match('files/{*rest}', 'files')).toEqual({ rest: undefined });
    expect(match('files/{**rest}', 'files/x')).toEqual({ rest: 'x' });
  });

  it('applies constraints', () => {
    expect(match('items/{id:int}', 'items/42')).toEqual({ id: '42' });
    expect(match('items/{id:int}', 'items/-3')).toEqual({ id: '-3' });
    expect(match('items/{id:int}', 'items/abc')).toBeNull();
    expect(match('items/{id:int}', 'items/2147483648')).toBeNull();
    expect(match('items/{id:long}', 'items/2147483648')).toEqual({ id: '2147483648' });
    expect(match('f/{x:bool}', 'f/TRUE')).toEqual({ x: 'TRUE' });
    expect(match('f/{x:guid}', 'f/3f2504e0-4f89-11d3-9a0c-0305e82c3301')).not.toBeNull();
    expect(match('f/{x:guid}', 'f/nope')).toBeNull();
    expect(match('f/{x:alpha}', 'f/abc')).not.toBeNull();
    expect(match('f/{x:alpha}', 'f/ab1')).toBeNull();
    expect(match('f/{x:int:range(1,10)}', 'f/10')).not.toBeNull();
    expect(match('f/{x:int:range(1,10)}', 'f/11')).toBeNull();
    expect(match('f/{x:minlength(3)}', 'f/ab')).toBeNull();
    expect(match('f/{x:length(2)}', 'f/ab')).not.toBeNull();
    expect(match('f/{x:regex(^\\d{{3}}$)}', 'f/123')).toEqual({ x: '123' });
    expect(match('f/{x:regex(^\\d{{3}}$)}', 'f/1234')).toBeNull();
    expect(match('f/{x:regex(^[a-c]+$)}', 'f/ABC')).toEqual({ x: 'ABC' });
    expect(match('f/{x:double}', 'f/1.5e3')).not.toBeNull();
  });

  it('matches complex segments the way ASP.NET does', () => {
    expect(match('docs/{name}.{ext}', 'docs/a.b.c')).toEqual({ name: 'a.b', ext: 'c' });
    expect(match('docs/{name}.{ext?}', 'docs/readme')).toEqual({ name: 'readme', ext: undefined });
    expect(match('docs/{name}.{ext?}', 'docs/readme.md')).toEqual({ name: 'readme', ext: 'md' });
  });

  it('rejects invalid templates', () => {
    expect(() => parseRouteTemplate('a/{id:nosuch}')).toThrow(/Unknown route constraint/);
    expect(() => parseRouteTemplate('a/{*rest}/b')).toThrow(/catch-all/);
    expect(() => parseRouteTemplate('a/{id}/{ID}')).toThrow(/twice/);
    expect(() => parseRouteTemplate('a/{id')).toThrow(/unclosed/);
  });

  it('orders literal before constrained before plain parameter before catch-all', () => {
    const order = ['x/{*rest}', 'x/{id}', 'x/{id:int}', 'x/literal'].map(parseRouteTemplate).sort(comparePrecedence).map((r) => r.template);
    expect(order).toEqual(['x/literal', 'x/{id:int}', 'x/{id}', 'x/{*rest}']);
  });
});

describe('RouteTable', () => {
  const table = new RouteTable<string>();
  table.add('items/{name}', ['GET'], 'byName');
  table.add('items/{*rest}', ['GET'], 'rest');
  table.add('items/{id:int}', ['GET'], 'byId');
  table.add('items/{id:int}', ['DELETE'], 'deleteById');
  table.add('items/special', ['get'], 'special');

  it('lets literal segments win over parameters regardless of registration order', () => {
    expect(table.match('GET', '/items/special')?.value).toBe('special');
    expect(table.match('GET', '/items/5')).toEqual({ value: 'byId', params: { id: '5' } });
    expect(table.match('GET', '/items/five')?.value).toBe('byName');
    expect(table.match('GET', '/items/a/b')?.value).toBe('rest');
  });

  it('treats the method as a route constraint', () => {
    expect(table.match('delete', '/items/5')?.value).toBe('deleteById');
    expect(table.match('DELETE', '/items/five')).toBeNull();
    expect(table.match('POST', '/items/5')).toBeNull();
  });

  it('omits absent optional parameters from params', () => {
    const t = new RouteTable<string>();
    t.add('echo/{id?}', ['GET'], 'echo');
    expect(t.match('GET', '/echo/')).toEqual({ value: 'echo', params: {} });
  });
});
