squeue --noheader --states=all --jobs=999998,999999 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
