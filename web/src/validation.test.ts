// The local checks follow docs/api.md's validation table at its edges.
import { describe, expect, it } from 'vitest';
import {
  checkEmail,
  checkEnergyClass,
  checkFirstName,
  checkMaxHourlyKwh,
  checkOptionalPassword,
  checkPassword,
  checkUsername,
  validate,
} from './validation';

describe('validation rules', () => {
  it('username: 3 to 64 of A-Z a-z 0-9 . _ -', () => {
    expect(checkUsername('abc')).toBeNull();
    expect(checkUsername('a.b_c-D9')).toBeNull();
    expect(checkUsername('x'.repeat(64))).toBeNull();
    expect(checkUsername('ab')).toMatch(/3 to 64/);
    expect(checkUsername('x'.repeat(65))).toMatch(/3 to 64/);
    expect(checkUsername('ann smith')).toMatch(/only letters/);
    expect(checkUsername('josé')).toMatch(/only letters/);
    expect(checkUsername('')).toBe('Enter a username.');
  });

  it('password: 8 to 128 characters', () => {
    expect(checkPassword('1234567')).toMatch(/at least 8/);
    expect(checkPassword('12345678')).toBeNull();
    expect(checkPassword('x'.repeat(128))).toBeNull();
    expect(checkPassword('x'.repeat(129))).toMatch(/at most 128/);
    expect(checkOptionalPassword('')).toBeNull();
    expect(checkOptionalPassword('short')).toMatch(/at least 8/);
  });

  it('email: one @ with text on both sides, 3 to 254 characters', () => {
    expect(checkEmail('a@b')).toBeNull();
    expect(checkEmail('ann@example.com')).toBeNull();
    expect(checkEmail('ann.example.com')).toMatch(/one @/);
    expect(checkEmail('@example.com')).toMatch(/one @/);
    expect(checkEmail('ann@')).toMatch(/one @/);
    expect(checkEmail('a@b@c')).toMatch(/one @/);
    expect(checkEmail(`a@${'b'.repeat(253)}`)).toMatch(/3 to 254/);
  });

  it('names: 1 to 100 characters, not blank', () => {
    expect(checkFirstName('Ann')).toBeNull();
    expect(checkFirstName('   ')).toBe('Enter a first name.');
    expect(checkFirstName('x'.repeat(101))).toMatch(/At most 100/);
  });

  it('max_hourly_kwh: a number above 0 and at most 1,000,000', () => {
    expect(checkMaxHourlyKwh('2.5')).toBeNull();
    expect(checkMaxHourlyKwh('1000000')).toBeNull();
    expect(checkMaxHourlyKwh('0')).toMatch(/greater than 0/);
    expect(checkMaxHourlyKwh('-1')).toMatch(/greater than 0/);
    expect(checkMaxHourlyKwh('1000000.5')).toMatch(/at most 1,000,000/);
    expect(checkMaxHourlyKwh('lots')).toMatch(/Enter a number/);
    expect(checkMaxHourlyKwh('')).toMatch(/Enter the hourly limit/);
  });

  it('energy class: one of the list, or none', () => {
    for (const ok of ['', 'A+++', 'A++', 'A+', 'A', 'B', 'C', 'D', 'E', 'F', 'G']) expect(checkEnergyClass(ok)).toBeNull();
    expect(checkEnergyClass('A++++')).not.toBeNull();
    expect(checkEnergyClass('H')).not.toBeNull();
  });

  it('validate keeps only the failing fields', () => {
    expect(validate({ username: 'ok_name', password: 'short' }, { username: checkUsername, password: checkPassword })).toEqual({
      password: 'A password has at least 8 characters.',
    });
  });
});
