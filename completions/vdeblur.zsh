#compdef vdeblur

_vdeblur_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _VDEBLUR_COMPLETE=complete_zsh vdeblur)
}

compdef _vdeblur_completion vdeblur
