// The page map. Each role reaches only its own pages; the guards send everyone else home.
import { Navigate, Route, Routes } from 'react-router-dom';
import { HomeRedirect, PublicOnly, RequireRole } from './components/Guards';
import { Layout } from './components/Layout';
import { Alerts } from './pages/Alerts';
import { Devices } from './pages/admin/Devices';
import { AdminConversation, Inbox } from './pages/admin/Inbox';
import { UserDetail } from './pages/admin/UserDetail';
import { Users } from './pages/admin/Users';
import { Chat } from './pages/client/Chat';
import { MyDevices } from './pages/client/MyDevices';
import { Consumption } from './pages/Consumption';
import { NotFound } from './pages/NotFound';
import { Profile } from './pages/Profile';
import { Register } from './pages/Register';
import { SignIn } from './pages/SignIn';

export function AppRoutes() {
  return (
    <Routes>
      <Route
        path="/signin"
        element={
          <PublicOnly>
            <SignIn />
          </PublicOnly>
        }
      />
      <Route
        path="/register"
        element={
          <PublicOnly>
            <Register />
          </PublicOnly>
        }
      />
      <Route element={<Layout />}>
        <Route index element={<HomeRedirect />} />
        <Route
          path="admin/users"
          element={
            <RequireRole role="admin">
              <Users />
            </RequireRole>
          }
        />
        <Route
          path="admin/users/:id"
          element={
            <RequireRole role="admin">
              <UserDetail />
            </RequireRole>
          }
        />
        <Route
          path="admin/devices"
          element={
            <RequireRole role="admin">
              <Devices />
            </RequireRole>
          }
        />
        <Route
          path="admin/devices/:id/consumption"
          element={
            <RequireRole role="admin">
              <Consumption admin />
            </RequireRole>
          }
        />
        <Route
          path="admin/devices/:id/alerts"
          element={
            <RequireRole role="admin">
              <Alerts admin />
            </RequireRole>
          }
        />
        <Route
          path="admin/chat"
          element={
            <RequireRole role="admin">
              <Inbox />
            </RequireRole>
          }
        />
        <Route
          path="admin/chat/:id"
          element={
            <RequireRole role="admin">
              <AdminConversation />
            </RequireRole>
          }
        />
        <Route
          path="admin/*"
          element={
            <RequireRole role="admin">
              <NotFound />
            </RequireRole>
          }
        />
        <Route
          path="devices"
          element={
            <RequireRole role="client">
              <MyDevices />
            </RequireRole>
          }
        />
        <Route
          path="consumption"
          element={
            <RequireRole role="client">
              <Consumption />
            </RequireRole>
          }
        />
        <Route
          path="consumption/:id"
          element={
            <RequireRole role="client">
              <Consumption />
            </RequireRole>
          }
        />
        <Route
          path="alerts"
          element={
            <RequireRole role="client">
              <Alerts />
            </RequireRole>
          }
        />
        <Route
          path="assistant"
          element={
            <RequireRole role="client">
              <Navigate to="/chat/assistant" replace />
            </RequireRole>
          }
        />
        <Route
          path="chat"
          element={
            <RequireRole role="client">
              <Chat />
            </RequireRole>
          }
        />
        <Route
          path="chat/:peer"
          element={
            <RequireRole role="client">
              <Chat />
            </RequireRole>
          }
        />
        <Route
          path="profile"
          element={
            <RequireRole>
              <Profile />
            </RequireRole>
          }
        />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}
