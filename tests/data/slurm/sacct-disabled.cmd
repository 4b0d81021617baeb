sacct --noheader --parsable2 --allocations --allusers --jobs=65,66 --format=JobID,State,ExitCode,NodeList,Reason
