// Entry point: the session, the router (the server answers index.html for every app path) and the pages.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router-dom';
import { AppRoutes } from './App';
import { SessionProvider } from './session/SessionContext';
import './styles.css';

const ROUTER_FUTURE = { v7_startTransition: true, v7_relativeSplatPath: true } as const;

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <SessionProvider>
      <BrowserRouter future={ROUTER_FUTURE}>
        <AppRoutes />
      </BrowserRouter>
    </SessionProvider>
  </StrictMode>,
);
