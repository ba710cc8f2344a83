
# ---------------------------------------------------------------------------
# phanes runtime: managed blocks in files phanes shares with the distribution
#
# Some files belong to a package (ufw's after.rules, pg_hba.conf): phanes owns
# only the lines between its markers and leaves the rest as it finds it.
#
# optional: only in bundles whose modules call these functions.
# ---------------------------------------------------------------------------

# phanes_block_merge TEXT NAME BLOCK: prints TEXT with the lines between "# BEGIN phanes NAME" and "# END phanes NAME" replaced by BLOCK (appended when absent; removed when BLOCK is empty).
phanes_block_merge() {
  local text=$1 name=$2 block=$3 line out='' inside=0 done=0
  local begin="# BEGIN phanes $name" end="# END phanes $name"
  [[ -z $block || $block == *$'\n' ]] || block+=$'\n'
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == "$begin" ]]; then
      inside=1
      continue
    fi
    if (( inside )); then
      if [[ $line == "$end" ]]; then
        inside=0
        if (( !done )) && [[ -n $block ]]; then
          out+="$begin"$'\n'"$block$end"$'\n'
        fi
        done=1
      fi
      continue
    fi
    out+="$line"$'\n'
  done < <(printf '%s' "$text")
  # An unterminated block loses its tail: the file is phanes' to repair.
  if (( !done )) && [[ -n $block ]]; then
    [[ -z $out || $out == *$'\n\n' ]] || out+=$'\n'
    out+="$begin"$'\n'"$block$end"$'\n'
  fi
  printf '%s' "$out"
}

# phanes_read_file PATH: prints PATH byte for byte (nothing when it does not exist), keeping a last newline that $(...) would strip: use as content=$(phanes_read_file P; echo x); content=${content%x}.
phanes_read_file() {
  [[ ! -f $1 ]] || cat -- "$1"
}
