// ESLint for the web app (`npm run lint`, and tests/web/run_lint.sh in CI). The rules that matter
// most here are React's hooks rules: a hook called conditionally, or an effect whose dependency
// list leaves out something it reads, is a bug the type checker cannot see. Both are errors.
import js from '@eslint/js';
import globals from 'globals';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/'] },
  {
    files: ['**/*.{ts,tsx}'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      ecmaVersion: 2022,
      globals: globals.browser,
    },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'error',
    },
  },
  {
    files: ['*.{js,mjs,ts}'],
    languageOptions: { globals: globals.node },
  },
);
