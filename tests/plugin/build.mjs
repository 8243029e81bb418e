// Bundles the plugin's real .gjs components for the browser, without Discourse:
//  content-tag turns <template> into template() calls, babel precompiles them with ember-source's
//  own template compiler and applies decorator-transforms, esbuild bundles. `discourse/*`,
//  `discourse-i18n` imports resolve to the small stand-ins in ./stand-ins (mirroring only the
//  arguments the plugin uses); `@ember/*` and `@glimmer/*` to ember-source.
import { transformAsync } from "@babel/core";
import { Preprocessor } from "content-tag";
import { build } from "esbuild";
import * as sass from "sass";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const emberPackages = join(here, "node_modules/ember-source/dist/packages");
const compilerPath = join(here, "node_modules/ember-source/dist/ember-template-compiler.js");
export const pluginDir = resolve(here, "../../plugins/discourse-fiber-link");

const STAND_INS = {
  "discourse/ui-kit/d-button": "d-button.gjs",
  "discourse/ui-kit/d-modal": "d-modal.gjs",
  "discourse/lib/ajax": "ajax.js",
  "discourse-i18n": "i18n.js",
  "discourse/truth-helpers": "truth-helpers.js",
  "@embroider/macros": "embroider-macros.js",
};

function emberModule(spec) {
  for (const candidate of [join(emberPackages, spec, "index.js"), join(emberPackages, `${spec}.js`)]) {
    if (existsSync(candidate)) {
      return candidate;
    }
  }
  return null;
}

const preprocessor = new Preprocessor();

const harnessPlugin = {
  name: "discourse-harness",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (STAND_INS[args.path]) {
        return { path: join(here, "stand-ins", STAND_INS[args.path]) };
      }
      if (args.path.startsWith("discourse/") || args.path.startsWith("discourse-")) {
        return { errors: [{ text: `no stand-in for ${args.path}; add one that mirrors only what the plugin uses` }] };
      }
      if (args.path === "@glimmer/component") {
        return { path: require.resolve("@glimmer/component") };
      }
      const ember = emberModule(args.path);
      if (ember) {
        return { path: ember };
      }
      return undefined;
    });
    b.onLoad({ filter: /\.(gjs|js)$/ }, async (args) => {
      if (args.path.includes("/node_modules/") && !args.path.endsWith(".gjs")) {
        return undefined;
      }
      let source = readFileSync(args.path, "utf8");
      if (args.path.endsWith(".gjs")) {
        source = preprocessor.process(source, { filename: args.path }).code;
      }
      const out = await transformAsync(source, {
        filename: args.path,
        babelrc: false,
        configFile: false,
        sourceMaps: "inline",
        plugins: [
          [require.resolve("babel-plugin-ember-template-compilation"), { compilerPath, targetFormat: "wire" }],
          [require.resolve("decorator-transforms"), { runtime: { import: "decorator-transforms/runtime-esm" } }],
        ],
      });
      return { contents: out.code, loader: "js", resolveDir: dirname(args.path) };
    });
  },
};

// The plugin's stylesheet, compiled as Discourse would (Discourse provides the CSS variables;
// harness.html defines a few with Discourse's light-scheme values).
export function styles(outfile) {
  const css = sass.compile(join(pluginDir, "assets/stylesheets/common/fiber-link.scss")).css;
  writeFileSync(outfile, css);
}

export async function bundle(outfile) {
  mkdirSync(dirname(outfile), { recursive: true });
  styles(join(dirname(outfile), "fiber-link.css"));
  await build({
    entryPoints: [join(here, "harness-entry.js")],
    bundle: true,
    format: "esm",
    outfile,
    resolveExtensions: [".gjs", ".js"],
    plugins: [harnessPlugin],
    define: { "process.env.NODE_ENV": '"development"' },
    nodePaths: [join(here, "node_modules")],
    logLevel: "warning",
    sourcemap: "inline",
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await bundle(process.argv[2] ?? join(here, "dist/harness.js"));
}
