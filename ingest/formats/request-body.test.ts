import { describe, expect, it } from 'vitest';
import { requestBodyFields } from './request-body.ts';

describe('requestBodyFields', () => {
  it('reads form bodies, keeping encoded values as logged beside the decoded ones', () => {
    expect(
      requestBodyFields(
        'username=wen.evans%40example.org&password=p%40ss+word',
        'application/x-www-form-urlencoded',
      ),
    ).toEqual({
      values: {
        username: 'wen.evans@example.org',
        'username.as_logged': 'wen.evans%40example.org',
        password: 'p@ss word',
        'password.as_logged': 'p%40ss+word',
      },
      user: 'wen.evans@example.org',
    });
  });

  it('reads JSON bodies, GraphQL variables and OAuth password grants', () => {
    expect(requestBodyFields('{"username":"sarak95","password":"hunter"}', 'application/json')?.user).toBe(
      'sarak95',
    );
    const gql = requestBodyFields(
      JSON.stringify({
        query:
          'mutation Login($username: String!, $password: String!) { login(username: $username, password: $password) { token } }',
        variables: { username: 'ana', password: 'x1' },
      }),
      'application/json',
    );
    expect(gql?.user).toBe('ana');
    expect(gql?.values['variables.password']).toBe('x1');
    expect(
      requestBodyFields(
        'grant_type=password&username=bob&password=pw&client_id=app',
        'application/x-www-form-urlencoded',
      )?.user,
    ).toBe('bob');
  });

  it('names no user without a password beside it, and gives up on what it cannot read', () => {
    expect(requestBodyFields('{"email":"a@example.com","newsletter":true}', 'application/json')).toEqual({
      values: { email: 'a@example.com', newsletter: 'true' },
    });
    expect(requestBodyFields('{"username":', 'application/json')).toBeUndefined();
    expect(requestBodyFields('', 'application/json')).toBeUndefined();
    expect(requestBodyFields('<xml/>', 'application/xml')).toBeUndefined();
    expect(requestBodyFields(`a=${'x'.repeat(70_000)}`, 'application/x-www-form-urlencoded')).toBeUndefined();
  });
});
