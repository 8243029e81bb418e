import DiscourseRecommended from "@discourse/lint-configs/eslint";

export default [
  ...DiscourseRecommended,
  { ignores: ["node_modules/**"] },
  {
    rules: {
      // The plugin imports DButton, DModal and dIcon from their long-standing paths
      // (discourse/components/d-button, …/d-modal, discourse/helpers/d-icon): those exist on the
      // current stable release, and on main core maps them to discourse/ui-kit/* (ui-kit-shims),
      // while the ui-kit paths exist only on recent main. Switch (eslint --fix) once the oldest
      // supported core has ui-kit, and pin older cores in .discourse-compatibility.
      "discourse/ui-kit-imports": "off",
    },
  },
  {
    // plain Node test files (node --test), not Discourse QUnit tests
    files: ["test/node/**/*.js"],
    languageOptions: { globals: { URL: "readonly" } },
  },
];
