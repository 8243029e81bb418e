import DiscourseRecommended from "@discourse/lint-configs/eslint";

export default [
  ...DiscourseRecommended,
  { ignores: ["node_modules/**"] },
  {
    // plain Node test files (node --test), not Discourse QUnit tests
    files: ["test/node/**/*.js"],
    languageOptions: { globals: { URL: "readonly" } },
  },
];
