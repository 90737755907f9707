// The lint habits (docs/contributing: `npm run lint`): typescript-eslint's recommended rules with the
// type-aware ones that catch real bugs here (a promise nobody awaits or handles), and imports first, in order.
import tseslint from "typescript-eslint";
import importX from "eslint-plugin-import-x";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/lib/**", "**/build/**", "**/.turbo/**", "bench/results/**", "bench/scratch/**"] },
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommended],
    plugins: { "import-x": importX },
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "import-x/first": "error",
      "import-x/order": [
        "error",
        { groups: ["builtin", "external", "internal", "parent", "sibling", "index"], "newlines-between": "never" },
      ],
      "import-x/no-duplicates": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", ignoreRestSiblings: true }],
    },
  },
  // The actor contract takes any payload, so that a class may declare the type its handlers take.
  { files: ["packages/runtime/src/types.ts"], rules: { "@typescript-eslint/no-explicit-any": "off" } },
);
