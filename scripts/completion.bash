# Tab completion of continust's manage.py commands and their options, in bash.
#
#   source scripts/completion.bash        # this shell; add the line to ~/.bashrc to keep it
#
# Completes `manage.py`, `./manage.py` and `PYTHON manage.py` (e.g. `.venv/bin/python
# manage.py`): the command names, then each command's options. Django answers itself:
# with DJANGO_AUTO_COMPLETE set, manage.py prints the completions for COMP_WORDS and
# COMP_CWORD instead of running a command (django.core.management's autocomplete).
_continust_manage() {
    local -a runner words
    local cword=$COMP_CWORD
    words=("${COMP_WORDS[@]}")
    runner=("${COMP_WORDS[0]}")
    if [[ ${COMP_WORDS[0]} != *manage.py ]]; then
        # PYTHON manage.py ...: complete only when the script is a manage.py.
        [[ ${COMP_WORDS[1]} == *manage.py && $COMP_CWORD -ge 2 ]] || return 0
        runner=("${COMP_WORDS[0]}" "${COMP_WORDS[1]}")
        words=("${COMP_WORDS[@]:1}")
        cword=$((COMP_CWORD - 1))
    fi
    COMPREPLY=($(COMP_WORDS="${words[*]}" COMP_CWORD=$cword DJANGO_AUTO_COMPLETE=1 \
        "${runner[@]}" 2>/dev/null))
}
complete -F _continust_manage -o default manage.py ./manage.py python python3 python3.11 \
    .venv/bin/python
