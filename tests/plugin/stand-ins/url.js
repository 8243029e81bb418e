// Stand-in for discourse/lib/url: userPath only (a forum at the root, no subfolder).
export function userPath(subPath) {
  return `/u/${subPath}`;
}
