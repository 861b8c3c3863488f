# Installs the NeuronOS guest agent in a Windows guest (run elevated).
# The agent runs in the user's interactive session (a logon task), since the
# clipboard and display settings belong to that session, not to session 0.
# Expects neuron-agent.exe and the VM's ca.crt, guest.crt, guest.key beside this script.
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$bin = Join-Path $env:ProgramFiles "NeuronOS"
$data = Join-Path $env:ProgramData "NeuronOS"
$certs = Join-Path $data "agent-certs"
New-Item -ItemType Directory -Force -Path $bin, $certs | Out-Null
Copy-Item (Join-Path $here "neuron-agent.exe") $bin -Force
foreach ($f in "ca.crt", "guest.crt", "guest.key") { Copy-Item (Join-Path $here $f) $certs -Force }
# Only SYSTEM, Administrators and interactive users may read the key.
icacls $certs /inheritance:r /grant:r "SYSTEM:(OI)(CI)F" "Administrators:(OI)(CI)F" "INTERACTIVE:(OI)(CI)R" | Out-Null
$action = New-ScheduledTaskAction -Execute (Join-Path $bin "neuron-agent.exe") -Argument "--cert-dir `"$certs`""
$trigger = New-ScheduledTaskTrigger -AtLogOn
$principal = New-ScheduledTaskPrincipal -GroupId "S-1-5-32-545" -RunLevel Limited
$settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) -ExecutionTimeLimit 0 -Hidden
Register-ScheduledTask -TaskName "NeuronOS Agent" -Action $action -Trigger $trigger -Principal $principal -Settings $settings -Force | Out-Null
Write-Output "NeuronOS agent installed; it starts at the next logon."
