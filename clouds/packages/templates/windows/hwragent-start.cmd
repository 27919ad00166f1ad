@echo off
rem hwragent-start.cmd: what the hwragent service runs. agent.json holds the package's
rem enrollment token until the first start enrolls (enroll replaces it with the agent
rem credential, so this happens once); then the agent runs as the daemon.
setlocal
set "HERE=%~dp0"
set "CONFIG=%HERE%agent.json"
findstr /C:"enrollment_token" "%CONFIG%" >nul
if %ERRORLEVEL%==0 (
    call "%HERE%hwragent.cmd" enroll --config "%CONFIG%"
    if errorlevel 1 exit /b
)
call "%HERE%hwragent.cmd" run --config "%CONFIG%"
exit /b %ERRORLEVEL%
