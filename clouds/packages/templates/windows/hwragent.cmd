@echo off
rem hwragent.cmd: the Acura replication agent's command line (python -m agent) for the copy
rem installed beside this file. Needs 64-bit Python 3.11+ with the zstandard module.
setlocal
set "HWRAGENT_HOME=%~dp0"
set "PYTHONPATH=%HWRAGENT_HOME:~0,-1%"
where py >nul 2>nul
if %ERRORLEVEL%==0 (
    py -3 -m agent %*
) else (
    python -m agent %*
)
exit /b %ERRORLEVEL%
