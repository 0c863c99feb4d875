package main

// goldenCases are the command sequences whose real Slurm 22.05 output is kept in
// testdata/real/<name>.golden (captured with `go test -run TestGolden -capture` on a
// machine with the local Slurm up) and that the fake must reproduce, modulo job ids,
// times and paths.
//
// In arguments, {N} is a name unique to the case, {J1}… the ids bound by earlier steps,
// {GONE} an id that does not exist, {MEM1}, {TMP1}, {CPU1} one more MiB, MiB or CPU than
// the node has.
var goldenCases = []goldenCase{
	{name: "sbatch_parsable_pending_in_down_partition", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "--nice=5", "--no-requeue", "--mem=100", "--cpus-per-task=1", "--tmp=10", "--partition=down", "-o", "/dev/null"),
		sq("--noheader", "--me", "--format=%i|%j|%T|%y|%Q|%r", "--name={N}"),
	}},
	{name: "sbatch_without_parsable", steps: []step{
		{args: []string{"sbatch", "--job-name={N}", "--partition=down", "-o", "/dev/null"}, stdin: script, bindSubmitted: "J1"},
	}},
	{name: "sbatch_mem_larger_than_node", steps: []step{
		sbErr("--parsable", "--job-name={N}", "--mem={MEM1}", "-o", "/dev/null"),
		sq("--noheader", "--states=all", "--format=%j|%T|%r|%P", "--name={N}"),
	}},
	{name: "sbatch_tmp_larger_than_node", steps: []step{
		sbErr("--parsable", "--job-name={N}", "--tmp={TMP1}", "-o", "/dev/null"),
	}},
	{name: "sbatch_more_cpus_than_node_in_up_partition", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "--cpus-per-task={CPU1}", "-o", "/dev/null"),
		sq("--noheader", "--format=%i|%j|%T|%y|%Q|%r|%C", "--name={N}"),
	}},
	{name: "sbatch_more_cpus_than_node_in_down_partition", steps: []step{
		sbErr("--parsable", "--job-name={N}", "--cpus-per-task={CPU1}", "--partition=down", "-o", "/dev/null"),
	}},
	{name: "sbatch_mem_too_large_with_down_partition_last", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "--mem={MEM1}", "--partition=debug,down", "-o", "/dev/null"),
		sq("--noheader", "--format=%i|%T|%r|%P", "--name={N}"),
	}},
	{name: "sbatch_mem_too_large_with_down_partition_first", steps: []step{
		sbErr("--parsable", "--job-name={N}", "--mem={MEM1}", "--partition=down,debug", "-o", "/dev/null"),
		sq("--noheader", "--states=all", "--format=%T|%r|%P", "--name={N}"),
	}},
	{name: "sbatch_unknown_constraint", steps: []step{
		sbErr("--parsable", "--job-name={N}", "--constraint=nosuchfeature", "-o", "/dev/null"),
	}},
	{name: "sbatch_unknown_partition", steps: []step{
		sbErr("--parsable", "--job-name={N}", "--partition=nosuchpartition", "-o", "/dev/null"),
	}},
	{name: "sbatch_gpus_without_gres", steps: []step{
		sbErr("--parsable", "--job-name={N}", "--gpus=1", "-o", "/dev/null"),
	}},
	{name: "sbatch_option_mistakes", steps: []step{
		sbErr("--parsable", "--bogus"),
		sbErr("--parsable", "--bogus=3"),
		sbErr("-Z"),
		sbErr("--parsable", "--hold=1"),
		sbErr("--parsable", "--mem"),
		sbErr("--parsable", "--time=abc"),
		sbErr("--parsable", "--mem=abc"),
		sbErr("--parsable", "--tmp=abc"),
		sbErr("--parsable", "--mem-per-cpu=abc"),
		sbErr("--parsable", "--cpus-per-task=abc"),
		sbErr("--parsable", "--cpus-per-task=0"),
		sbErr("--parsable", "--ntasks=abc"),
		sbErr("--parsable", "--nice=2147483646"),
		sbErr("--parsable", "--gpus=abc"),
		sbErr("--parsable", "nosuchscriptfile"),
	}},
	{name: "sbatch_script_mistakes", steps: []step{
		{args: []string{"sbatch", "--parsable", "--job-name={N}"}, stdin: ""},
		{args: []string{"sbatch", "--parsable", "--job-name={N}"}, stdin: "sleep 1\n"},
		{args: []string{"sbatch", "--parsable", "--job-name={N}", "-p", "down"}, stdin: "#!/bin/sh\r\nsleep 1\r\n"},
	}},
	{name: "sbatch_hold", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "--hold", "--partition=down", "-o", "/dev/null"),
		sb("J2", "--parsable", "--job-name={N}", "--hold", "--mem={MEM1}", "-o", "/dev/null"),
		sq("--noheader", "--format=%i|%j|%T|%y|%Q|%r", "--name={N}", "--sort=i"),
	}},
	{name: "sbatch_script_directives_and_defaults", steps: []step{
		{args: []string{"sbatch", "--parsable", "-o", "/dev/null"}, stdin: "#!/bin/sh\n#SBATCH --job-name={N}\n#SBATCH -p down\nsleep 1\n", bind: "J1"},
		sq("--noheader", "--format=%i|%j|%P|%m|%d|%l|%C", "--name={N}"),
	}},
	{name: "sbatch_time_limits", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "--nice=1", "--time=1:30", "-p", "down", "-o", "/dev/null"),
		sb("J2", "--parsable", "--job-name={N}", "--nice=2", "--time=2-00:00:00", "-p", "down", "-o", "/dev/null"),
		sb("J3", "--parsable", "--job-name={N}", "--nice=3", "--time=1-02:03:04", "-p", "down", "-o", "/dev/null"),
		sb("J4", "--parsable", "--job-name={N}", "--nice=4", "--time=UNLIMITED", "-p", "down", "-o", "/dev/null"),
		sq("--noheader", "--format=%i|%l|%L", "--name={N}"),
	}},
	{name: "squeue_formats", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "--nice=3", "--mem=1G", "--tmp=2G", "-p", "down", "-o", "/dev/null"),
		sb("J2", "--parsable", "--job-name={N}", "--nice=7", "--mem=1536", "--tmp=10", "-p", "down", "-o", "/dev/null"),
		sq("--format=%.18i %.30j %.10T %.5y %.10Q %r", "--name={N}"),
		sq("--noheader", "--format=[%5i][%.5i][%3j][%.3j][%10T][%.2t][%t][%5y][%.8Q][%.10r][%m][%d]", "--name={N}"),
		sq("--noheader", "--format=%i|%-5i|%%|%P|%D|%C|%c|%h|%O|%z|%a|%q|%k|%f|%b|%E|%S|%e|%B|%N|%R", "--name={N}"),
		sq("-O", "JobID,Name:5,State:.10,Nice:4,PriorityLong,Reason:|", "--name={N}"),
		sq("--noheader", "-O", "JobID: ,Name: ,State: ,Nice: ,PriorityLong: ,Reason", "--name={N}"),
		sq("--noheader", "--Format=jobid:0|,statecompact:0|,reasonlist:0|,partition:0|,prioritylong:4|,priority:0|,mintmpdisk:0|,minmemory:0", "--name={N}"),
		sq("--noheader", "-O", "Bogus", "--name={N}"),
		sq("-h", "-n", "{N}", "-o", "%i", "-S", "-i"),
		sq("-h", "-n", "{N}", "-o", "%i", "-S", "y"),
	}},
	{name: "squeue_default_format", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "-p", "down", "-o", "/dev/null"),
		sq("--name={N}"),
		sq("-l", "--name={N}"),
	}},
	{name: "squeue_by_id", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "-p", "down", "-o", "/dev/null"),
		sq("--noheader", "-j", "{J1}", "--format=%i|%T"),
		sq("--noheader", "-j{J1}", "--format=%i|%T"),
		sq("--noheader", "--jobs={J1},{GONE}", "--format=%i|%T"),
		sq("--noheader", "--jobs={GONE}", "--format=%i|%T"),
		sq("--noheader", "-t", "all", "--jobs={GONE}", "--format=%i|%T"),
		sq("--noheader", "--jobs=abc"),
		sq("--noheader", "--jobs=0"),
		sq("-j", "{J1}", "extra"),
	}},
	{name: "squeue_option_mistakes", steps: []step{
		sq("--bogus"),
		sq("-t", "bogus"),
		sq("-o", "%i", "-O", "JobID"),
		sq("-O", "JobID", "-o", "%i"),
		sq("--hol"),
		sq("--noheader", "--states=PD,R", "--name={N}"),
	}},
	{name: "scancel_pending_then_lookups", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "--nice=2", "-p", "down", "-o", "/dev/null"),
		sc("{J1}"),
		sq("--noheader", "--format=%i|%T|%r", "--name={N}"),
		sq("--noheader", "-t", "all", "--format=%i|%j|%T|%r|%y|%Q", "--name={N}"),
		sq("--noheader", "--states=all", "--jobs={J1}", "--format=%i|%T|%r"),
		sq("--noheader", "--jobs={J1}", "--format=%i|%T|%r"),
		sc("{J1}"),
		sc("-v", "{J1}"),
		sc("--batch", "--signal=TERM", "{J1}"),
		sc("--state=PENDING", "{J1}"),
		{args: []string{"scontrol", "update", "JobId={J1}", "Nice=3"}},
	}},
	{name: "scancel_mistakes_and_absent_jobs", steps: []step{
		sc("{GONE}"),
		sc("{GONE}", "{GONE}"),
		sc("--name={N}"),
		sc("--me", "--name={N}"),
		sc("-v", "--name={N}"),
		sc("abc"),
		sc("0"),
		sc(),
		sc("--bogus"),
		sc("--signal=BOGUS", "{GONE}"),
		sc("-s", "TERM", "-b", "{GONE}"),
		sc("--batch", "--signal=TERM", "--name={N}"),
		sc("--state=PENDING", "{GONE}"),
		sc("--state=bogus", "{GONE}"),
		sc("{GONE}.0"),
	}},
	{name: "scancel_by_state_filter", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "-p", "down", "-o", "/dev/null"),
		sc("--state=RUNNING", "--batch", "--signal=TERM", "{J1}"),
		sc("--state=RUNNING", "{J1}", "{GONE}"),
		sc("--batch", "--signal=TERM", "--state=RUNNING", "--me", "--name={N}"),
		sq("--noheader", "--format=%i|%T|%r", "--name={N}"),
		sc("--state=pending", "{J1}"),
		sq("--noheader", "-t", "all", "--format=%i|%T|%r", "--name={N}"),
	}},
	{name: "scancel_by_name", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "-p", "down", "-o", "/dev/null"),
		sb("J2", "--parsable", "--job-name={N}", "-p", "down", "-o", "/dev/null"),
		sc("--me", "--name={N}"),
		sq("--noheader", "-t", "all", "--format=%i|%T|%r", "--name={N}", "--sort=i"),
	}},
	{name: "scontrol_renice", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "-p", "down", "-o", "/dev/null"),
		sb("J2", "--parsable", "--job-name={N}", "-p", "down", "-o", "/dev/null"),
		sb("J3", "--parsable", "--job-name={N}", "--hold", "-p", "down", "-o", "/dev/null"),
		{args: []string{"scontrol", "update", "JobId={J1},{J2}", "Nice=7"}},
		{args: []string{"scontrol", "update", "JobId={J2},{GONE},{J3}", "Nice=9"}},
		sq("--noheader", "--format=%i|%y|%Q|%r", "--name={N}", "--sort=i"),
		{args: []string{"scontrol", "update", "jobid={J1}", "nice=4"}},
		{args: []string{"scontrol", "update", "job={J1}", "Nice=abc"}},
		{args: []string{"scontrol", "update", "JobId={J1},", "Nice="}},
		sq("--noheader", "--format=%i|%y|%Q", "--jobs={J1}"),
		{args: []string{"scontrol", "update", "JobId={GONE}", "Nice=8"}},
		{args: []string{"scontrol", "update", "JobId=abc", "Nice=8"}},
		{args: []string{"scontrol", "update", "JobId={J1}", "Nice=2147483647"}},
		{args: []string{"scontrol", "update", "JobId={J1}", "Nice=-2147483648"}},
		{args: []string{"scontrol", "update", "JobId={J1}", "Bogus=1"}},
		{args: []string{"scontrol", "update", "Nice=4"}},
		sc("{J1}"),
		{args: []string{"scontrol", "update", "JobId={J1},{J2}", "Nice=1"}},
	}},
	{name: "scontrol_show_job", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "--nice=5", "--no-requeue", "--mem=100", "--tmp=10", "-p", "down", "-o", "/dev/null"),
		sb("J2", "--parsable", "--job-name={N}", "--hold", "--mem=2000", "--tmp=2G", "-p", "down", "--time=1-02:03:04", "--account=acct1", "-o", "/dev/null"),
		sb("J3", "--parsable", "--job-name={N}", "--cpus-per-task=4", "-p", "down", "-o", "/dev/null"),
		{args: []string{"scontrol", "show", "job", "{J1}"}},
		{args: []string{"scontrol", "show", "job", "{J2}"}},
		{args: []string{"scontrol", "-o", "show", "job", "{J3}"}},
		{args: []string{"scontrol", "show", "job={J3}"}},
		sc("{J1}"),
		{args: []string{"scontrol", "show", "jobs", "{J1}"}},
		{args: []string{"scontrol", "show", "job", "{GONE}"}},
		{args: []string{"scontrol", "show", "job", "abc"}},
		{args: []string{"scontrol", "show", "job", "{J1}", "{J2}"}},
		{args: []string{"scontrol", "show", "bogus"}},
		{args: []string{"scontrol", "bogus"}},
		{args: []string{"scontrol", "--bogus"}},
	}},
	{name: "sbatch_rejection_leaves_failed_record", steps: []step{
		sbErr("--parsable", "--job-name={N}", "--mem={MEM1}", "--no-requeue", "-o", "/dev/null"),
		sq("--noheader", "-t", "all", "--format=%j|%T|%r|%P|%m", "--name={N}"),
		sq("--noheader", "--format=%j|%T|%r", "--name={N}"),
	}},
	{name: "scontrol_hold_and_release", steps: []step{
		sb("J1", "--parsable", "--job-name={N}", "-p", "down", "-o", "/dev/null"),
		{args: []string{"scontrol", "hold", "{J1}"}},
		sq("--noheader", "--format=%i|%T|%r|%Q", "--jobs={J1}"),
		{args: []string{"scontrol", "release", "{J1}"}},
		// The reason is None until slurmctld's next scheduling pass (the fake's is the next
		// command), so it is not compared here.
		sq("--noheader", "--format=%i|%T|%Q", "--jobs={J1}"),
		{args: []string{"scontrol", "uhold", "{J1}"}},
		sq("--noheader", "--format=%i|%T|%r|%Q", "--jobs={J1}"),
		{args: []string{"scontrol", "release", "{J1}"}},
		{args: []string{"scontrol", "release", "{GONE}"}},
		{args: []string{"scontrol", "hold", "{GONE}"}},
		sc("{J1}"),
		{args: []string{"scontrol", "hold", "{J1}"}},
	}},
	{name: "scontrol_ping", steps: []step{
		{args: []string{"scontrol", "ping"}},
		{args: []string{"scontrol", "ping", "extra"}},
	}},
}

const script = "#!/bin/sh\nexec sleep 300\n"

type goldenCase struct {
	name  string
	steps []step
}

// step is one command. bind names the job id its --parsable stdout prints; bindSubmitted
// the id of "Submitted batch job <id>".
type step struct {
	args          []string
	stdin         string
	bind          string
	bindSubmitted string
}

func sb(bind string, args ...string) step {
	return step{args: append([]string{"sbatch"}, args...), stdin: script, bind: bind}
}

func sbErr(args ...string) step {
	return step{args: append([]string{"sbatch"}, args...), stdin: script}
}

func sq(args ...string) step { return step{args: append([]string{"squeue"}, args...)} }

func sc(args ...string) step { return step{args: append([]string{"scancel"}, args...)} }
