import { InvalidArgumentError, type Command } from 'commander';
import { example } from './common.js';

/**
 * `clusterguard completion bash|zsh|fish`: a completion script made from the commands as
 * commander holds them, so it cannot drift from them. Each script keeps one table, command
 * path → subcommands and options; a small driver finds the path in the words typed so far.
 */

const shells = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof shells)[number];

interface Entry {
  path: string;
  subs: string[];
  opts: string[];
}

function entries(cmd: Command, prefix: string[] = [], inherited: string[] = []): Entry[] {
  const own = cmd.options.flatMap((o) => [o.short, o.long].filter((f): f is string => !!f));
  // The program's options are global: every command takes them.
  const opts = [...new Set([...own, ...inherited, '--help'])];
  const subs = cmd.commands.map((c) => c.name());
  const global = prefix.length === 0 ? own : inherited;
  return [
    { path: prefix.join(' '), subs, opts },
    ...cmd.commands.flatMap((c) => entries(c, [...prefix, c.name()], global)),
  ];
}

/** The choices of `-o`: completed after it. */
const outputChoices = 'table json yaml jsonl';

function table(list: Entry[], indent: string, sep: string, end: string): string {
  return list
    .map(
      (e) =>
        `${indent}"${e.path}") subs="${e.subs.join(' ')}"${sep} opts="${e.opts.join(' ')}"${end}`,
    )
    .join('\n');
}

/** bash's and zsh's lookup: `_clusterguard_words <path> sub|opt`. */
function words(list: Entry[]): string {
  return `_clusterguard_words() {
  local subs="" opts=""
  case "$1" in
${table(list, '    ', ';', ' ;;')}
  esac
  if [[ "$2" == sub ]]; then echo "$subs"; else echo "$opts"; fi
}`;
}

function bash(list: Entry[]): string {
  return `# clusterguard completion for bash: source <(clusterguard completion bash)
${words(list)}
_clusterguard() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmdpath="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    [[ " $(_clusterguard_words "$cmdpath" sub) " == *" $w "* ]] && cmdpath="\${cmdpath:+$cmdpath }$w"
  done
  if [[ "$prev" == -o || "$prev" == --output ]]; then
    COMPREPLY=($(compgen -W "${outputChoices}" -- "$cur"))
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_clusterguard_words "$cmdpath" opt)" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_clusterguard_words "$cmdpath" sub)" -- "$cur"))
  fi
}
complete -o default -F _clusterguard clusterguard
`;
}

function zsh(list: Entry[]): string {
  return `#compdef clusterguard
# clusterguard completion for zsh (after compinit): source <(clusterguard completion zsh)
${words(list)}
_clusterguard() {
  local cmdpath="" w
  for w in "\${(@)words[2,CURRENT-1]}"; do
    [[ "$w" == -* ]] && continue
    [[ " $(_clusterguard_words "$cmdpath" sub) " == *" $w "* ]] && cmdpath="\${cmdpath:+$cmdpath }$w"
  done
  if [[ "\${words[CURRENT-1]}" == -o || "\${words[CURRENT-1]}" == --output ]]; then
    compadd -- ${outputChoices}
  elif [[ "\${words[CURRENT]}" == -* ]]; then
    compadd -- \${=$(_clusterguard_words "$cmdpath" opt)}
  else
    compadd -- \${=$(_clusterguard_words "$cmdpath" sub)}
  fi
}
compdef _clusterguard clusterguard
`;
}

function fish(list: Entry[]): string {
  const cases = list
    .map(
      (e) =>
        `    case '${e.path}'\n        set subs ${e.subs.join(' ')}\n        set opts ${e.opts.join(' ')}`,
    )
    .join('\n');
  return `# clusterguard completion for fish: clusterguard completion fish > ~/.config/fish/completions/clusterguard.fish
function __clusterguard_words
    set -l subs
    set -l opts
    switch $argv[1]
${cases}
    end
    if test "$argv[2]" = sub
        printf '%s\\n' $subs
    else
        printf '%s\\n' $opts
    end
end
function __clusterguard_complete
    set -l words (commandline -opc)
    set -l cmdpath ''
    for w in $words[2..-1]
        string match -q -- '-*' $w; and continue
        if contains -- $w (__clusterguard_words "$cmdpath" sub)
            set cmdpath (string trim -- "$cmdpath $w")
        end
    end
    set -l cur (commandline -ct)
    if contains -- "$words[-1]" -o --output
        printf '%s\\n' ${outputChoices}
    else if string match -q -- '-*' $cur
        __clusterguard_words "$cmdpath" opt
    else
        __clusterguard_words "$cmdpath" sub
    end
end
complete -c clusterguard -f -a '(__clusterguard_complete)'
`;
}

export function completionScript(program: Command, shell: Shell): string {
  const list = entries(program);
  return { bash, zsh, fish }[shell](list);
}

export function completionCommand(program: Command): void {
  example(
    program
      .command('completion')
      .description('print a shell completion script (bash, zsh or fish)')
      .argument('<shell>', 'bash, zsh or fish', (v: string) => {
        if (!(shells as readonly string[]).includes(v)) {
          throw new InvalidArgumentError(`expected one of ${shells.join(', ')}`);
        }
        return v as Shell;
      }),
    'source <(clusterguard completion bash)',
    'clusterguard completion fish > ~/.config/fish/completions/clusterguard.fish',
  ).action((shell: Shell) => {
    process.stdout.write(completionScript(program, shell));
  });
}
