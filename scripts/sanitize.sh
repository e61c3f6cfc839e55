#!/bin/bash
# Sanitizer runs of the test suite (docs/RELIABILITY.md):
#   1. the whole suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#      (gcc by default, CC=clang for clang); any report fails the test that triggered it;
#   2. the concurrency test (16 threads on one session, concurrent create/destroy) built with
#      ThreadSanitizer;
#   3. the catalogue of malformed models and inputs under valgrind: no invalid access and no
#      definite leak, through the API runner and (traced children) every `ember run`.
# Usage: scripts/sanitize.sh [asan|tsan|valgrind]...   (default: all three)
# Build folders: build-asan, build-tsan, build-valgrind (reused when they exist).
set -uo pipefail
cd "$(dirname "$0")/.."
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(asan tsan valgrind)
cc="${CC:-gcc}"
extra=()
# clang links the sanitizer runtimes into executables only: shared objects keep undefined refs
[[ "$cc" == *clang* ]] && extra+=(-Db_lundef=false)
failed=()
# ifunc resolvers of the target_clones variants run while the program is relocated, before
# the sanitizer runtimes are ready (TSan crashes there): one variant only.
no_clones=-DEMBER_NO_CLONES

setup() { # dir, meson options...
  local dir="$1"
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    CC="$cc" meson setup "$dir" -Dwerror=true --buildtype=debugoptimized "${extra[@]}" "$@" \
      >/dev/null || return 1
  fi
  ninja -C "$dir" >/dev/null || ninja -C "$dir" | tail -20
}

# Reports are fatal, leaks included, with stacks; OpenBLAS stays on one thread of its own
# (ember's pool does the threading; OpenBLAS's threads are not instrumented).
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/reliability/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
export OPENBLAS_NUM_THREADS=1

for step in "${steps[@]}"; do
  start=$(date +%s)
  case "$step" in
    asan)
      if setup build-asan -Db_sanitize=address,undefined \
           "-Dc_args=-fno-sanitize-recover=all -fno-omit-frame-pointer $no_clones"; then
        # cli_test checks that `ember test` reports a kernel's SIGSEGV as a crash: ASan would
        # turn that signal into its own report and exit 1, so that test runs with handle_segv=0.
        # heads_exhaustive sweeps all 2^32 floats through one kernel (minutes in a release
        # build): instrumented, it checks every 64th block of 2^20 floats plus the blocks where
        # decisions turn. install links a program against the installed library without the
        # sanitizer runtime: it runs in the normal suite only.
        mapfile -t tests < <(meson test -C build-asan --list 2>/dev/null | grep ' / ' |
                             sed 's|.* / ||' | grep -vx -e cli_test -e install)
        EMBER_EXHAUSTIVE_STRIDE=64 meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 4 \
          "${tests[@]}" || failed+=(asan)
        ASAN_OPTIONS="$ASAN_OPTIONS:handle_segv=0" meson test -C build-asan --print-errorlogs \
          --timeout-multiplier 4 cli_test || failed+=("asan (cli_test)")
      else failed+=("asan (build)"); fi
      ;;
    tsan)
      if setup build-tsan -Db_sanitize=thread "-Dc_args=-fno-omit-frame-pointer $no_clones"; then
        # Criterion cannot start under TSan (its shared arena fails to map), so this is the
        # plain-C concurrency test only.
        meson test -C build-tsan --print-errorlogs --num-processes 1 --timeout-multiplier 10 \
          concurrency || failed+=(tsan)
      else failed+=("tsan (build)"); fi
      ;;
    valgrind)
      if setup build-valgrind; then
        dir=build-valgrind/tests/reliability
        # Children are traced too (--trace-children), so every `ember run` is checked as well.
        EMBER_CATALOGUE_MAX_SECONDS=600 valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
          --trace-children=yes --track-fds=no \
          "$dir/catalogue" "$dir/catalogue-files/catalogue.tsv" --ember build-valgrind/tools/ember \
          >build-valgrind/valgrind-catalogue.log 2>&1
        rc=$?
        tail -1 build-valgrind/valgrind-catalogue.log
        if [ $rc -ne 0 ]; then
          grep -E '^FAIL|^==[0-9]+==' build-valgrind/valgrind-catalogue.log | head -40
          failed+=(valgrind)
        fi
      else failed+=("valgrind (build)"); fi
      ;;
    *) echo "sanitize.sh: unknown step '$step'"; exit 2 ;;
  esac
  echo "sanitize.sh: $step took $(( $(date +%s) - start )) s"
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "sanitize.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "sanitize.sh: all clean"
