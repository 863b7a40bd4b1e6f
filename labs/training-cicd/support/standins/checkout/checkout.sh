# actions/checkout, for one repository served from a folder the grader knows.
set -euo pipefail
. "$GITHUB_ACTION_PATH/grader.conf"   # ORIGIN: the pushed repository (a local git folder)
if [ "$INPUT_REPOSITORY" != "$GITHUB_REPOSITORY" ]; then
  echo "::error::the grader serves only $GITHUB_REPOSITORY; this step checks out $INPUT_REPOSITORY" >&2
  exit 1
fi
dest="$GITHUB_WORKSPACE${INPUT_PATH:+/$INPUT_PATH}"
mkdir -p "$dest"
if [ "$INPUT_CLEAN" = "true" ]; then find "$dest" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi
want="${INPUT_REF:-$GITHUB_REF}"
case "$want" in
  refs/*) ref="$want" ;;
  *) if git -C "$ORIGIN" rev-parse -q --verify "refs/heads/$want^{commit}" >/dev/null; then ref="refs/heads/$want"
     elif git -C "$ORIGIN" rev-parse -q --verify "refs/tags/$want^{commit}" >/dev/null; then ref="refs/tags/$want"
     else ref="$want"; fi ;;   # a commit sha
esac
[ -z "$INPUT_REF" ] && [ "${GITHUB_EVENT_NAME}" != "pull_request" ] && [ "$ref" = "$GITHUB_REF" ] && sha="$GITHUB_SHA" || sha=""
depth=()
[ "$INPUT_FETCH_DEPTH" = "0" ] || depth=(--depth="$INPUT_FETCH_DEPTH")
git init -q "$dest"
git -C "$dest" config --local gc.auto 0
git -C "$dest" remote add origin "${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}"
case "$ref" in
  refs/heads/*) local_ref="refs/remotes/origin/${ref#refs/heads/}" ;;
  refs/pull/*) local_ref="refs/remotes/pull/${ref#refs/pull/}" ;;
  refs/*) local_ref="$ref" ;;
  *) local_ref="" ;;
esac
if [ -n "$local_ref" ]; then
  git -C "$dest" -c protocol.file.allow=always fetch -q --no-tags "${depth[@]}" "file://$ORIGIN" "+$ref:$local_ref"
else
  git -C "$dest" -c protocol.file.allow=always fetch -q --no-tags "${depth[@]}" "file://$ORIGIN" "$ref"
  local_ref=FETCH_HEAD
fi
case "$ref" in
  refs/heads/*) git -C "$dest" checkout -q --force -B "${ref#refs/heads/}" "$local_ref" ;;
  *) git -C "$dest" checkout -q --force --detach "$local_ref" ;;
esac
if [ -n "$sha" ] && [ "$(git -C "$dest" rev-parse HEAD)" != "$sha" ]; then
  echo "::error::$ref is no longer at $sha" >&2; exit 1
fi
if [ "$INPUT_PERSIST_CREDENTIALS" = "true" ]; then
  git -C "$dest" config --local "http.${GITHUB_SERVER_URL}/.extraheader" "AUTHORIZATION: basic ***"
fi
echo "ref=$ref" >> "$GITHUB_OUTPUT"
echo "commit=$(git -C "$dest" rev-parse HEAD)" >> "$GITHUB_OUTPUT"
git --no-pager -C "$dest" log -1 --format='HEAD is now at %h %s'
