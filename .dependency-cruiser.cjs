/**
 * Layer rules of the hexagonal layout, checked by `npm run lint:layers` as part of scripts/test.sh.
 * The domain depends on nothing but zod and uuid, and the application only on the domain.
 * Adapters never import src/main, and only src/main (the composition root) picks adapters.
 */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment: 'src/domain holds the core and its ports: no other layer, no I/O library, no framework.',
      severity: 'error',
      from: { path: '^src/domain' },
      to: {
        pathNot: ['^src/domain', '^node_modules/(zod|uuid)/', '^node:crypto$', '^crypto$'],
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'domain-types-stay-in-domain',
      comment: 'Type imports from src/domain may only name the domain and zod.',
      severity: 'error',
      from: { path: '^src/domain' },
      to: { path: '^src/(application|adapters|main)' },
    },
    {
      name: 'application-depends-on-domain-only',
      severity: 'error',
      from: { path: '^src/application' },
      to: { pathNot: ['^src/domain', '^src/application', '^node:crypto$', '^crypto$'] },
    },
    {
      name: 'adapters-do-not-know-main',
      comment: 'Adapters get their settings through constructors; only src/main reads the configuration.',
      severity: 'error',
      from: { path: '^src/adapters' },
      to: { path: '^src/main' },
    },
    {
      name: 'no-di-outside-main',
      comment: 'Inversify stays in the composition root.',
      severity: 'error',
      from: { pathNot: '^src/main' },
      to: { path: '^node_modules/(inversify|reflect-metadata|@inversifyjs)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
