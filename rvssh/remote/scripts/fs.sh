# fs.sh: fs-list and fs-exists for a server with no python, in POSIX sh.
#
# The same answers as common.py + fs.py, byte for byte. Run as `/bin/sh -s`
# with the arguments set by a first line that the caller prepends:
#
#     set -- 'fs-list' '<path>'        (or 'fs-exists' '<path>')
#
# By hand: { echo "set -- fs-list '~'"; cat fs.sh; } | ssh host /bin/sh -s
#
# It never reads stdin (stdin *is* the program) and prints exactly one JSON
# object on one line (ASCII only), exiting 0 also when the request fails:
# {"error": {"kind": ..., "message": ...}}. Paths: `~`, `~/...` and "" are
# $HOME, relative paths are under $HOME, then normalised; a `\xNN` (NN >= 80)
# in a path that does not exist as written stands for that byte. Bytes that
# are not UTF-8 are printed as the four characters `\xNN`.
#
# How: the shell globs the folder once and sorts the entries into kinds with
# `test` (builtins, no process per entry); one `stat` (through xargs) reads
# the sizes and times of all entries. od turns every name into numbers, so
# that awk sees bytes whatever its locale; awk decodes UTF-8 and writes the
# JSON; sort puts folders first, then names in code-point order.
# Utilities: test, printf, od, awk, sort, xargs -0, ls, stat (GNU `-c`, else
# BSD `-f`; without stat, sizes come from `ls -ln` and times are null).
#
# Where the answers can differ from fs.py: an "internal" OSError message
# (symlink loop, name too long) takes its errno from a small table and
# counts characters beyond Latin-1 as printable in the repr of the path; two
# names that print alike (the byte 0xff and the text \xff) come in readdir
# order from fs.py, in JSON order here; BusyBox stat has no nanoseconds, so
# an mtime less than a microsecond below a whole second, or before 1970 and
# not whole, may be one second off.

LC_ALL=C
export LC_ALL
IFS=' 	
'
# What the environment could change: cd, globbing (bash, ksh93), ls output.
unset CDPATH GLOBIGNORE FIGNORE QUOTING_STYLE TIME_STYLE LS_BLOCK_SIZE BLOCK_SIZE BLOCKSIZE CLICOLOR CLICOLOR_FORCE

# Reads NUL-terminated fields (od -An -tu1 lines; a byte 0 ends a field) up to
# a line "=": the kind of answer, then its values. For "list", the stat -L
# lines of the entries that exist, "=", the stat lines of dangling links, "=",
# then `ls -pa` lines of a folder whose entries cannot be examined.
ANSWER_AWK='
BEGIN {
    for (i = 0; i < 256; i++) hex[i] = sprintf("%02x", i)
    for (i = 32; i < 127; i++) { c = sprintf("%c", i); chr[i] = c; code[c] = i; js[i] = c }
    js[34] = "\\\""; js[92] = "\\\\"
    for (i = 0; i < 32; i++) js[i] = sprintf("\\u%04x", i)
    js[8] = "\\b"; js[9] = "\\t"; js[10] = "\\n"; js[12] = "\\f"; js[13] = "\\r"; js[127] = "\\u007f"
    # The UTF-8 (as hex) of the four characters \xNN that stand for byte NN.
    for (i = 128; i < 256; i++)
        escaped_utf[i] = "5c78" hex[code[substr(hex[i], 1, 1)]] hex[code[substr(hex[i], 2, 1)]]
}
section == 0 {
    if ($0 == "=") { section = 1; next }
    for (i = 1; i <= NF; i++) if ($i == 0) { field(); n = 0 } else b[++n] = $i + 0
    next
}
section == 3 {
    line = shown_line($0)
    if (line ~ /\/$/) { line = substr(line, 1, length(line) - 1); typed_dir[line] = 1 }
    listed[line] = 1
    next
}
$0 == "=" { section++; next }
section == 1 { followed[++nfollowed] = $0; next }
section == 2 { unfollowed[++nunfollowed] = $0; next }

function field() {
    if (++nfields == 1) mode = ascii()
    else if (mode != "list") { decode(1); value[nfields] = (mode == "oserror" && nfields == 4) ? repr() : json() }
    else if (nfields == 2) flavour = ascii()
    else if (nfields == 3) { decode(1); path = json() }
    else entry()
}
function ascii(   i, s) { s = ""; for (i = 1; i <= n; i++) s = s chr[b[i]]; return s }
# One entry: its kind (a letter, see fs.sh), then its name.
function entry() {
    kind[++entries] = chr[b[1]]
    decode(2)
    name[entries] = json()
    sort_key[entries] = utf_hex()
    shown[entries] = shown_name(2)
}
# Decode b[from..n] as UTF-8 like Python with surrogateescape: a byte that
# does not begin a valid sequence becomes the code point 0xDC00 + byte.
function decode(from,   i, c, len, lo, hi, k, ok, point, utf) {
    points = 0
    for (i = from; i <= n; i += len) {
        c = b[i]; len = 1
        if (c < 128) { point_of[++points] = c; utf_of[points] = hex[c]; continue }
        if (c >= 194 && c <= 223) { len = 2; point = c - 192 }
        else if (c >= 224 && c <= 239) { len = 3; point = c - 224 }
        else if (c >= 240 && c <= 244) { len = 4; point = c - 240 }
        lo = (c == 224) ? 160 : (c == 240) ? 144 : 128
        hi = (c == 237) ? 159 : (c == 244) ? 143 : 191
        ok = len > 1 && i + len - 1 <= n
        utf = hex[c]
        for (k = 1; ok && k < len; k++) {
            if (b[i + k] < lo || b[i + k] > hi) ok = 0
            else { point = point * 64 + b[i + k] - 128; utf = utf hex[b[i + k]] }
            lo = 128; hi = 191
        }
        if (ok) { point_of[++points] = point; utf_of[points] = utf }
        else { point_of[++points] = 56320 + c; utf_of[points] = escaped_utf[c]; len = 1 }
    }
}
# The decoded text as JSON string content: json.dumps with ensure_ascii, each
# undecodable byte written as \xNN (to_text in common.py).
function json(   k, c, s) {
    s = ""
    for (k = 1; k <= points; k++) {
        c = point_of[k]
        if (c < 128) s = s js[c]
        else if (c >= 56448 && c <= 56575) s = s "\\\\x" hex[c - 56320]
        else s = s unicode_escape(c)
    }
    return s
}
function unicode_escape(c) {
    if (c < 65536) return sprintf("\\u%04x", c)
    c -= 65536
    return sprintf("\\u%04x\\u%04x", 55296 + int(c / 1024), 56320 + c % 1024)
}
# The UTF-8 of the text json() writes, in hex: sorts as Python sorts the names.
function utf_hex(   k, s) { s = ""; for (k = 1; k <= points; k++) s = s utf_of[k]; return s }
# A name as ls -q shows it in the C locale: every unprintable byte a "?".
function shown_name(from,   i, s) {
    s = ""
    for (i = from; i <= n; i++) s = s ((b[i] >= 32 && b[i] < 127) ? chr[b[i]] : "?")
    return s
}
function shown_line(line) { gsub(/[^ -~]/, "?", line); return line }
# Python repr() of the decoded text (an OSError message names the path so),
# as JSON string content; non-ASCII characters beyond Latin-1 count as printable.
function repr(   k, c, quote, s) {
    quote = 39
    for (k = 1; k <= points; k++) if (point_of[k] == 39) quote = 34
    for (k = 1; k <= points; k++) if (point_of[k] == 34) quote = 39
    s = js[quote]
    for (k = 1; k <= points; k++) {
        c = point_of[k]
        if (c == quote || c == 92) s = s "\\\\" js[c]
        else if (c == 9) s = s "\\\\t"
        else if (c == 10) s = s "\\\\n"
        else if (c == 13) s = s "\\\\r"
        else if (c < 32 || (c >= 127 && c <= 160) || c == 173) s = s "\\\\x" hex[c]
        else if (c < 127) s = s js[c]
        else if (c >= 55296 && c <= 57343) s = s sprintf("\\\\u%04x", c)
        else s = s unicode_escape(c)
    }
    return s js[quote]
}
# Size and mtime from one line of stat ("size/seconds[.fraction]") or ls -ln.
function read_stat(line,   at, parts) {
    size = 0; mtime = "null"
    if (flavour == "ls") {
        at = index(line, " ./")
        if (at) { split(substr(line, 1, at - 1), parts, " "); if (parts[5] !~ /,$/) size = parts[5] }
        return
    }
    if (split(line, parts, "/") != 2) return
    size = parts[1]; mtime = seconds(parts[2])
}
# int(st_mtime) as Python computes it: int(tv_sec + tv_nsec * 1e-9).
function seconds(text,   at, sec, nsec) {
    at = index(text, ".")
    if (!at) return sprintf("%.0f", text + 0)
    sec = substr(text, 1, at - 1) + 0; nsec = substr(text, at + 1) + 0
    # GNU prints the signed decimal value, BSD prints tv_sec and tv_nsec.
    if (flavour == "gnu" && substr(text, 1, 1) == "-" && nsec > 0) { sec -= 1; nsec = 1000000000 - nsec }
    return sprintf("%.0f", int(sec + nsec * 1e-9) + 0)
}
# Index ls -ln lines by the name they show (as ls -q does, after "./"); for
# a link (arrow), the name comes before " -> " and its target: each such
# cut is a candidate.
function index_ls_lines(lines, count, by_name, arrow,   k, line, at, head, tail) {
    for (k = 1; k <= count; k++) {
        line = shown_line(lines[k]); at = index(line, " ./")
        if (!at) continue
        if (!arrow) { by_name[substr(line, at + 1)] = lines[k]; continue }
        head = ""; tail = substr(line, at + 1)
        while ((at = index(tail, " -> ")) > 0) {
            head = head substr(tail, 1, at - 1); by_name[head] = lines[k]
            head = head " -> "; tail = substr(tail, at + 4)
        }
    }
}
function answer_list(   e, group, is_dir, is_link, followed_at, unfollowed_at, existing, dangling) {
    for (e = 1; e <= entries; e++)
        if (kind[e] ~ /[dDfF]/) existing++; else if (kind[e] == "l") dangling++
    # A stat line goes missing when an entry changes between two looks: ask
    # again; the last time, such lines are not used (sizes 0, times null).
    if (flavour != "ls" && flavour != "none" && (nfollowed != existing + 1 || nunfollowed != dangling + 1)) {
        if (!final) { print "!"; return }
        if (nfollowed != existing + 1) nfollowed = 0
        if (nunfollowed != dangling + 1) nunfollowed = 0
    }
    if (flavour == "ls") {
        index_ls_lines(followed, nfollowed, ls_followed, 0)
        index_ls_lines(unfollowed, nunfollowed, ls_unfollowed, 1)
    }
    print "- {\"path\":\"" path "\",\"items\":["
    for (e = 1; e <= entries; e++) {
        if (kind[e] == "p" && !((shown[e]) in listed)) continue
        is_dir = kind[e] ~ /[dD]/ ? "true" : "false"
        is_link = kind[e] ~ /[DFl]/ ? "true" : "false"
        if (kind[e] ~ /[dDfF]/)
            read_stat(flavour == "ls" ? ls_followed["./" shown[e]] : nfollowed ? followed[++followed_at] : "")
        else if (kind[e] == "l")
            read_stat(flavour == "ls" ? ls_unfollowed["./" shown[e]] : nunfollowed ? unfollowed[++unfollowed_at] : "")
        else { size = 0; mtime = "null"; if ((shown[e]) in typed_dir) is_dir = "true" }
        if (is_dir == "true") { size = 0; group = 0 } else group = 1
        print group sort_key[e] " {\"name\":\"" name[e] "\",\"is_dir\":" is_dir \
            ",\"size\":" size ",\"mtime\":" mtime ",\"is_link\":" is_link "}"
    }
    print "~ ]}"
}
END {
    if (mode == "list") answer_list()
    else if (mode == "exists") print "{\"path\":\"" value[2] "\",\"exists\":" value[3] ",\"is_dir\":" value[4] "}"
    else if (mode == "error") print "{\"error\":{\"kind\":\"" value[2] "\",\"message\":\"" value[3] "\"}}"
    else print "{\"error\":{\"kind\":\"internal\",\"message\":\"OSError: [Errno " value[2] "] " value[3] ": " value[4] "\"}}"
}
'

# Joins the sorted lines of a listing ("-" head, items, "~" tail) into one
# line; a first line "!" means ask again (exit 3).
JOIN_AWK='
$0 == "!" { exit 3 }
{ text = substr($0, index($0, " ") + 1) }
/^-/ { printf "%s", text; next }
/^~/ { print text; next }
{ printf "%s%s", (items++ ? "," : ""), text }
'

# Print one JSON answer: its kind, then its values (bytes, any but NUL).
answer() {
    printf '%s\0' "$@" | od -An -v -tu1 | awk "$ANSWER_AWK"
}

# Set HOME_DIR as os.path.expanduser("~"): $HOME, else the password database,
# without trailing slashes.
home_dir() {
    if [ "${HOME+set}" = set ]; then
        HOME_DIR=$HOME
    else
        _user=$(id -un 2>/dev/null)
        case $_user in '' | -* | *[!A-Za-z0-9._-]*) HOME_DIR='~'; return ;; esac
        eval "HOME_DIR=~$_user"
        case $HOME_DIR in '~'*) HOME_DIR='~'; return ;; esac
    fi
    while :; do
        case $HOME_DIR in */) HOME_DIR=${HOME_DIR%/} ;; *) break ;; esac
    done
    [ -n "$HOME_DIR" ] || HOME_DIR=/
}

# Set REPLY to posixpath.normpath($1).
normpath() {
    case $1 in
        '') REPLY=.; return ;;
        ///*) _lead=/ ;;
        //*) _lead=// ;;
        /*) _lead=/ ;;
        *) _lead= ;;
    esac
    _out='' _count=0 _ifs=$IFS
    IFS=/
    set -f
    for _part in $1; do
        case $_part in
            '' | .) ;;
            ..)
                if { [ -z "$_lead" ] && [ "$_count" -eq 0 ]; } || [ "${_out##*/}" = .. ]; then
                    _out=${_out:+$_out/}.. _count=$((_count + 1))
                elif [ "$_count" -gt 1 ]; then
                    _out=${_out%/*} _count=$((_count - 1))
                elif [ "$_count" -eq 1 ]; then
                    _out='' _count=0
                fi ;;
            *) _out=${_out:+$_out/}$_part _count=$((_count + 1)) ;;
        esac
    done
    set +f
    IFS=$_ifs
    REPLY=$_lead$_out
    [ -n "$REPLY" ] || REPLY=.
}

# Set TARGET to $1 made absolute like resolve_user_path in common.py.
resolve_user_path() {
    home_dir
    case $1 in
        '' | '~') TARGET=$HOME_DIR; return ;;
        '~/'*) _path=$HOME_DIR${1#'~'} ;;
        *) _path=$1 ;;
    esac
    case $_path in
        /*) ;;
        *) case $HOME_DIR in */) _path=$HOME_DIR$_path ;; *) _path=$HOME_DIR/$_path ;; esac ;;
    esac
    normpath "$_path"
    TARGET=$REPLY
}

# Set REPLY to $1 with each \xNN (NN >= 80) turned into the byte it stands for.
from_text() {
    _rest=$1 REPLY=
    while :; do
        case $_rest in *'\x'*) ;; *) break ;; esac
        REPLY=$REPLY${_rest%%'\x'*}
        _rest=${_rest#*'\x'}
        case $_rest in
            [89abcdefABCDEF][0123456789abcdefABCDEF]*)
                _byte=$(printf "\\$(printf %o "0x${_rest%"${_rest#??}"}")")
                REPLY=$REPLY$_byte _rest=${_rest#??} ;;
            *) REPLY=$REPLY'\x' ;;
        esac
    done
    REPLY=$REPLY$_rest
}

# Set TARGET like locate_user_path: the path, or the one its \xNN escapes
# name when only that one exists.
locate_user_path() {
    resolve_user_path "$1"
    case $TARGET in *'\x'*) ;; *) return ;; esac
    if [ -e "$TARGET" ] || [ -L "$TARGET" ]; then return; fi
    from_text "$TARGET"
    if [ -e "$REPLY" ] || [ -L "$REPLY" ]; then TARGET=$REPLY; fi
}

# Answer why $1 cannot be looked at, as Python's os.stat would fail: ls says
# the C library's reason.
stat_error() {
    _why=$(ls -dL -- "$1" 2>&1 >/dev/null)
    case ${_why##*: } in
        'Permission denied' | 'Operation not permitted')
            answer error permission_denied "Permission denied: $1" ;;
        'Too many levels of symbolic links' | 'Symbolic link loop')
            case $(uname -s 2>/dev/null) in Linux) _errno=40 ;; *) _errno=62 ;; esac
            answer oserror "$_errno" "${_why##*: }" "$1" ;;
        'File name too long' | 'Filename too long')
            case $(uname -s 2>/dev/null) in Linux) _errno=36 ;; *) _errno=63 ;; esac
            answer oserror "$_errno" "${_why##*: }" "$1" ;;
        'Input/output error' | 'I/O error')
            answer oserror 5 "${_why##*: }" "$1" ;;
        *) answer error not_found "Path not found: $1" ;;
    esac
}

# Set FLAVOUR and STAT, the command that prints "size/mtime" for its operands
# (with -L: of their targets). FLAVOUR says how the mtime is written: gnu
# (signed decimal), bsd (seconds.nanoseconds), sec (seconds), ls (none).
stat_flavour() {
    if _seen=$(stat -L -c %.9Y -- . 2>/dev/null); then
        case $_seen in
            *.?????????) FLAVOUR=gnu STAT='stat -c %s/%.9Y' ;;
            *) FLAVOUR=sec STAT='stat -c %s/%Y' ;;
        esac
    elif _seen=$(stat -L -f %Fm -- . 2>/dev/null); then
        case $_seen in
            *.?????????) FLAVOUR=bsd STAT='stat -f %z/%Fm' ;;
            *) FLAVOUR=sec STAT='stat -f %z/%m' ;;
        esac
    elif ls -lnqd -- . >/dev/null 2>&1; then
        FLAVOUR=ls STAT='ls -lnqd'
    else
        FLAVOUR=ls STAT='ls -lnd'
    fi
}

# Run $STAT (a command and its options: split on purpose) with the options
# "$@" on the NUL-terminated names on stdin, as few times as the system allows.
stat_names() {
    # shellcheck disable=SC2086
    xargs -0 $STAT "$@" -- 2>/dev/null
}

# Print the listing of the folder whose entries are "$@" (globbed with the
# prefix $1; a pattern that matched nothing comes back as itself). Kinds:
# d folder, f file, D and F the same through a symlink, l a link whose target
# cannot be examined (dangling), ? an entry that cannot be examined at all,
# p the same, named like a pattern: an entry only if ls -pa shows it.
list_entries() {
    _prefix=$1
    shift
    {
        {
            printf 'list\0%s\0%s\0' "$FLAVOUR" "$TARGET"
            for _entry; do
                if [ -e "$_entry" ]; then
                    if [ -d "$_entry" ]; then _kind=d; else _kind=f; fi
                    if [ -L "$_entry" ]; then
                        if [ "$_kind" = d ]; then _kind=D; else _kind=F; fi
                    fi
                elif [ -L "$_entry" ]; then
                    _kind=l
                else
                    case $_entry in
                        "$_prefix*" | "$_prefix.[!.]*" | "$_prefix..?*")
                            # Nothing matched, or an entry so named: ls -pa tells.
                            if [ "$FLAVOUR" != none ]; then continue; fi
                            _kind=p ;;
                        *) _kind='?' ;;
                    esac
                fi
                printf '%s%s\0' "$_kind" "${_entry#"$_prefix"}"
            done
        } | od -An -v -tu1
        printf '=\n'
        if [ "$FLAVOUR" = none ]; then
            printf '=\n=\n'
            ls -paq -- "$_prefix" 2>/dev/null || ls -pa -- "$_prefix" 2>/dev/null
        else
            # "." ends each list, so that xargs never runs the command on none.
            {
                for _entry; do
                    if [ -e "$_entry" ]; then printf '%s\0' "$_entry"; fi
                done
                printf '.\0'
            } | stat_names -L
            printf '=\n'
            {
                for _entry; do
                    if [ ! -e "$_entry" ] && [ -L "$_entry" ]; then printf '%s\0' "$_entry"; fi
                done
                printf '.\0'
            } | stat_names
            printf '=\n'
        fi
    } | awk -v final="$((_attempt >= 3))" "$ANSWER_AWK" | sort | awk "$JOIN_AWK"
}

fs_list() {
    locate_user_path "$1"
    if [ ! -e "$TARGET" ]; then stat_error "$TARGET"; return; fi
    if [ ! -d "$TARGET" ]; then answer error not_a_directory "Not a directory: $TARGET"; return; fi
    if [ ! -r "$TARGET" ]; then answer error permission_denied "Permission denied: $TARGET"; return; fi
    case $TARGET in /*) _dir=$TARGET ;; *) _dir=./$TARGET ;; esac
    if cd -P -- "$_dir" 2>/dev/null; then
        _prefix=./
        stat_flavour
    else
        # Readable but not searchable: names only, and which are folders.
        case $_dir in */) _prefix=$_dir ;; *) _prefix=$_dir/ ;; esac
        FLAVOUR=none STAT=
    fi
    _attempt=1
    until list_entries "$_prefix" "$_prefix"* "$_prefix".[!.]* "$_prefix"..?*; do
        [ "$_attempt" -lt 3 ] || break
        _attempt=$((_attempt + 1))
    done
}

fs_exists() {
    _exists=false _is_dir=false
    if [ -n "$1" ]; then
        locate_user_path "$1"
        if [ -e "$TARGET" ]; then
            _exists=true
            if [ -d "$TARGET" ]; then _is_dir=true; fi
        fi
    fi
    answer exists "$1" "$_exists" "$_is_dir"
}

main() {
    if [ "$#" -eq 0 ]; then
        answer error bad_request "Unknown probe subcommand: "
        return
    fi
    case $1 in
        fs-list | fs-exists) ;;
        *) answer error bad_request "Unknown probe subcommand: $1"; return ;;
    esac
    if [ "$#" -ne 2 ]; then
        answer error bad_request "Usage: $1 <path>"
    elif [ "$1" = fs-list ]; then
        fs_list "$2"
    else
        fs_exists "$2"
    fi
}

main "$@" </dev/null
exit 0
