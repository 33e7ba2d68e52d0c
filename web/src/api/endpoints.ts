// Typed functions for the auth, users, devices, monitoring, support and chat APIs (and the config), one per route of
// docs/api.md.
import { queryString, type ApiClient, type RequestOptions } from './client';
import type { ConversationSummary } from '../live/state';
import type {
  Account,
  AppConfig,
  ChatPage,
  AccountPatch,
  AlertList,
  AlertQuery,
  CsvRange,
  DayConsumption,
  DaysConsumption,
  Credentials,
  Device,
  DevicePatch,
  DeviceQuery,
  List,
  NewAccount,
  NewDevice,
  Profile,
  ProfilePatch,
  Registration,
  Session,
  SupportAnswer,
  UserQuery,
} from './types';

const id = (value: string) => encodeURIComponent(value);

export function createApi(client: ApiClient) {
  const { request } = client;
  return {
    login: (credentials: Credentials) =>
      request<Session>('POST', '/api/auth/login', credentials, { auth: false }),
    register: (registration: Registration) =>
      request<Session>('POST', '/api/auth/register', registration, { auth: false }),
    changePassword: (old_password: string, new_password: string) =>
      request<Session>('PUT', '/api/auth/password', { old_password, new_password }),
    createAccount: (account: NewAccount) => request<Account>('POST', '/api/auth/accounts', account),
    updateAccount: (accountId: string, patch: AccountPatch) =>
      request<Account>('PATCH', `/api/auth/accounts/${id(accountId)}`, patch),
    deleteAccount: (accountId: string) => request<void>('DELETE', `/api/auth/accounts/${id(accountId)}`),

    listUsers: (query: UserQuery = {}, options?: RequestOptions) =>
      request<List<Profile>>('GET', `/api/users${queryString({ ...query })}`, undefined, options),
    me: (options?: RequestOptions) => request<Profile>('GET', '/api/users/me', undefined, options),
    getUser: (userId: string, options?: RequestOptions) =>
      request<Profile>('GET', `/api/users/${id(userId)}`, undefined, options),
    updateProfile: (userId: string, patch: ProfilePatch) =>
      request<Profile>('PATCH', `/api/users/${id(userId)}`, patch),

    listDevices: (query: DeviceQuery = {}, options?: RequestOptions) =>
      request<List<Device>>(
        'GET',
        `/api/devices${queryString({
          owner: query.owner,
          unassigned: query.unassigned ? 'true' : undefined,
          limit: query.limit,
          offset: query.offset,
        })}`,
        undefined,
        options,
      ),
    getDevice: (deviceId: string, options?: RequestOptions) =>
      request<Device>('GET', `/api/devices/${id(deviceId)}`, undefined, options),
    createDevice: (device: NewDevice) => request<Device>('POST', '/api/devices', device),
    updateDevice: (deviceId: string, patch: DevicePatch) =>
      request<Device>('PATCH', `/api/devices/${id(deviceId)}`, patch),
    deleteDevice: (deviceId: string) => request<void>('DELETE', `/api/devices/${id(deviceId)}`),
    assignDevice: (deviceId: string, userId: string) =>
      request<Device>('PUT', `/api/devices/${id(deviceId)}/owner`, { user_id: userId }),
    unassignDevice: (deviceId: string) => request<Device>('DELETE', `/api/devices/${id(deviceId)}/owner`),

    consumption: (deviceId: string, date: string, tz: string, options?: RequestOptions) =>
      request<DayConsumption>(
        'GET',
        `/api/consumption/${id(deviceId)}${queryString({ date, tz })}`,
        undefined,
        options,
      ),
    consumptionDays: (deviceId: string, range: CsvRange, options?: RequestOptions) =>
      request<DaysConsumption>('GET', `/api/consumption/${id(deviceId)}/days${queryString({ ...range })}`, undefined, options),
    consumptionCsv: (deviceId: string, range: CsvRange, options?: RequestOptions) =>
      client.download(`/api/consumption/${id(deviceId)}.csv${queryString({ ...range })}`, options),
    listAlerts: (query: AlertQuery = {}, options?: RequestOptions) =>
      request<AlertList>('GET', `/api/alerts${queryString({ ...query })}`, undefined, options),

    askSupport: (text: string, tz?: string) =>
      request<SupportAnswer>('POST', '/api/support/messages', tz ? { text, tz } : { text }),

    config: (options?: RequestOptions) => request<AppConfig>('GET', '/api/config', undefined, { auth: false, ...options }),
    chatConversations: (options?: RequestOptions) =>
      request<{ items: ConversationSummary[] }>('GET', '/api/chat/conversations', undefined, options),
    chatMessages: (peerId: string, query: { before?: number; limit?: number } = {}, options?: RequestOptions) =>
      request<ChatPage>('GET', `/api/chat/conversations/${id(peerId)}/messages${queryString({ ...query })}`, undefined, options),
  };
}

export type Api = ReturnType<typeof createApi>;
