// Bundles the plugin's real .gjs components for the browser, without Discourse:
//  content-tag turns <template> into template() calls, babel precompiles them with ember-source's
//  own template compiler and applies decorator-transforms, esbuild bundles. `discourse/*`,
//  `discourse-i18n` imports resolve to the small stand-ins in ./stand-ins (mirroring only the
//  arguments the plugin uses); `@ember/*` and `@glimmer/*` to ember-source. The plugin imports
//  the paths that exist on Discourse's stable release and on main (discourse/components/d-button,
//  not discourse/ui-kit/d-button): an import with no stand-in fails the build.
//
//  `harness:plugin` is the plugin as Discourse finds it, by file name: every api-initializer,
//  every module whose name ends in "route-map", every connector (connectors/<outlet>/<name>),
//  route, route template and service under assets/javascripts/discourse.
import { transformAsync } from "@babel/core";
import { Preprocessor } from "content-tag";
import { build } from "esbuild";
import * as sass from "sass";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const emberPackages = join(here, "node_modules/ember-source/dist/packages");
const compilerPath = join(here, "node_modules/ember-source/dist/ember-template-compiler.js");
export const pluginDir = resolve(here, "../../plugins/discourse-fiber-link");

const STAND_INS = {
  "discourse/components/d-button": "d-button.gjs",
  "discourse/components/d-modal": "d-modal.gjs",
  "discourse/components/dialog-messages/confirm-session": "confirm-session.gjs",
  "discourse/helpers/d-icon": "d-icon.js",
  "discourse/lib/ajax": "ajax.js",
  "discourse/lib/api": "api.js",
  "discourse/lib/url": "url.js",
  "discourse/routes/discourse": "discourse-route.js",
  "discourse-i18n": "i18n.js",
  "@embroider/macros": "embroider-macros.js",
};

const discourseDir = join(pluginDir, "assets/javascripts/discourse");

function listFiles(dir) {
  if (!existsSync(dir)) {
    return [];
  }
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

// The plugin's modules by their Discourse module names (path under assets/javascripts/discourse
// without the extension), grouped the way Discourse looks them up.
export function pluginModules() {
  const modules = listFiles(discourseDir)
    .filter((f) => /\.(js|gjs)$/.test(f))
    .map((file) => ({ file, name: file.slice(discourseDir.length + 1).replace(/\.(js|gjs)$/, "") }));
  const group = (test, key = (n) => n) =>
    modules.filter((m) => test(m.name)).map((m) => ({ ...m, key: key(m.name) }));
  return {
    apiInitializers: group((n) => n.startsWith("api-initializers/"), (n) => n.slice("api-initializers/".length)),
    routeMaps: group((n) => /route-map$/.test(n)),
    connectors: group((n) => n.startsWith("connectors/"), (n) => n.slice("connectors/".length)),
    routes: group((n) => n.startsWith("routes/"), (n) => n.slice("routes/".length)),
    templates: group((n) => n.startsWith("templates/"), (n) => n.slice("templates/".length)),
    services: group((n) => n.startsWith("services/"), (n) => n.slice("services/".length)),
  };
}

function pluginModuleSource() {
  const groups = pluginModules();
  const lines = [];
  let i = 0;
  for (const [group, list] of Object.entries(groups)) {
    const entries = list.map((m) => {
      lines.push(`import * as m${i} from ${JSON.stringify(m.file)};`);
      return `  ${JSON.stringify(m.key)}: m${i++}.default,`;
    });
    lines.push(`export const ${group} = {`, ...entries, "};");
  }
  return lines.join("\n");
}

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
    b.onResolve({ filter: /^harness:plugin$/ }, () => ({ path: "plugin", namespace: "harness" }));
    b.onLoad({ filter: /.*/, namespace: "harness" }, () => ({
      contents: pluginModuleSource(),
      loader: "js",
      resolveDir: discourseDir,
    }));
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
